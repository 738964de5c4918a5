"""Payout batches: the activities of the payout batch flow (`payout-batcher`).

Claim queued withdrawals into a batch, hand it to the bank, ask the bank about it, find the batches
still at the bank (when the batcher starts), close a batch. Database activities are one transaction
each and idempotent on the batch id; bank calls carry the batch and payout numbers, on which the bank
deduplicates.
"""

from __future__ import annotations

from sqlalchemy import func, select, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from temporalio import activity
from temporalio.exceptions import ApplicationError

from activities.parties.bank import BankClient
from activities.parties.errors import PartyError
from activities.refusals import party_failure
from db.engine import unit_of_work
from db.models import PayoutBatch, Withdrawal
from domain.crypto import FieldCipher
from domain.withdrawals import (
    AT_THE_BANK,
    BankBatchAnswer,
    BankPayoutItem,
    BatchClosing,
    ClaimedBatch,
    ClaimRequest,
    OpenBatch,
    WithdrawalStatus,
)


def _bank_error(exc: Exception) -> ApplicationError:
    return party_failure(exc, "the bank")


class PayoutActivities:
    def __init__(self, sessions: async_sessionmaker[AsyncSession], cipher: FieldCipher, bank: BankClient) -> None:
        self._sessions = sessions
        self._cipher = cipher
        self._bank = bank

    @activity.defn(name="payouts.claim")
    async def claim(self, req: ClaimRequest) -> ClaimedBatch:
        """Put the oldest queued withdrawals into batch `batch_id`; run again, it returns the same batch."""
        async with unit_of_work(self._sessions) as session:
            batch = await session.get(PayoutBatch, req.batch_id)
            if batch is None:
                rows = (
                    (
                        await session.execute(
                            select(Withdrawal)
                            .where(Withdrawal.status == WithdrawalStatus.QUEUED.value, Withdrawal.batch_id.is_(None))
                            .order_by(Withdrawal.queued_at, Withdrawal.withdrawal_id)
                            .limit(req.max_items)
                            .with_for_update(skip_locked=True)
                        )
                    )
                    .scalars()
                    .all()
                )
                if rows:
                    for w in rows:
                        w.batch_id, w.status = req.batch_id, WithdrawalStatus.SUBMITTED.value
                    session.add(
                        PayoutBatch(
                            batch_id=req.batch_id,
                            status="SUBMITTED",
                            item_count=len(rows),
                            total_minor=sum(w.amount_minor for w in rows),
                            paid=0,
                            failed=0,
                            unknown=0,
                        )
                    )
                    await session.flush()
            ids = (
                (
                    await session.execute(
                        select(Withdrawal.withdrawal_id)
                        .where(Withdrawal.batch_id == req.batch_id)
                        .order_by(Withdrawal.withdrawal_id)
                    )
                )
                .scalars()
                .all()
            )
            waiting = (
                await session.execute(
                    select(func.count()).where(
                        Withdrawal.status == WithdrawalStatus.QUEUED.value, Withdrawal.batch_id.is_(None)
                    )
                )
            ).scalar_one()
            return ClaimedBatch(batch_id=req.batch_id, withdrawal_ids=list(ids), waiting=int(waiting))

    @activity.defn(name="payouts.submit")
    async def submit(self, batch_id: str, notify_url: str) -> list[BankPayoutItem]:
        async with unit_of_work(self._sessions) as session:
            rows = (
                (
                    await session.execute(
                        select(Withdrawal).where(Withdrawal.batch_id == batch_id).order_by(Withdrawal.withdrawal_id)
                    )
                )
                .scalars()
                .all()
            )
        items = [
            {
                "payout_no": w.withdrawal_id,
                "amount_minor": w.amount_minor,
                "currency": w.currency,
                "account_name": w.bank_account_name,
                "account_no": self._cipher.decrypt(w.bank_account_enc),
                "bank_name": w.bank_name,
            }
            for w in rows
        ]
        try:
            return await self._bank.submit_batch(batch_id, items, notify_url)
        except PartyError as exc:
            raise _bank_error(exc) from exc

    @activity.defn(name="payouts.query")
    async def query(self, batch_id: str) -> list[BankPayoutItem]:
        try:
            return await self._bank.query_batch(batch_id) or []
        except PartyError as exc:
            raise _bank_error(exc) from exc

    @activity.defn(name="payouts.ask")
    async def ask(self, batch_id: str) -> BankBatchAnswer:
        """The bank's answer about a batch, telling "no such batch" (a 404) apart from a batch it holds."""
        try:
            items = await self._bank.query_batch(batch_id)
        except PartyError as exc:
            raise _bank_error(exc) from exc
        return BankBatchAnswer(known=items is not None, items=items or [])

    @activity.defn(name="payouts.open_batches")
    async def open_batches(self) -> list[OpenBatch]:
        """Batches with withdrawals at the bank and not answered for good (SUBMITTED or UNKNOWN): what a
        starting batcher must follow, whatever its previous run carried over or lost."""
        async with unit_of_work(self._sessions) as session:
            rows = (
                await session.execute(
                    select(PayoutBatch.batch_id, Withdrawal.withdrawal_id, PayoutBatch.created_at)
                    .join(PayoutBatch, PayoutBatch.batch_id == Withdrawal.batch_id)
                    .where(Withdrawal.status.in_([s.value for s in AT_THE_BANK]))
                    .order_by(PayoutBatch.created_at, Withdrawal.batch_id, Withdrawal.withdrawal_id)
                )
            ).all()
        batches: dict[str, OpenBatch] = {}
        for batch_id, withdrawal_id, opened_at in rows:
            b = batches.setdefault(batch_id, OpenBatch(batch_id=batch_id, withdrawal_ids=[], opened_at=opened_at))
            b.withdrawal_ids.append(withdrawal_id)
        return list(batches.values())

    @activity.defn(name="payouts.still_open")
    async def still_open(self, batch_id: str) -> list[str]:
        """The batch's withdrawals still waiting for the bank (finance may have resolved the others)."""
        async with unit_of_work(self._sessions) as session:
            ids = await session.execute(
                select(Withdrawal.withdrawal_id).where(
                    Withdrawal.batch_id == batch_id, Withdrawal.status.in_([s.value for s in AT_THE_BANK])
                )
            )
            return sorted(ids.scalars())

    @activity.defn(name="payouts.close")
    async def close(self, c: BatchClosing) -> None:
        async with unit_of_work(self._sessions) as session:
            await session.execute(
                update(PayoutBatch)
                .where(PayoutBatch.batch_id == c.batch_id, PayoutBatch.status != "CLOSED")
                .values(status="CLOSED", paid=c.paid, failed=c.failed, unknown=c.unknown, closed_at=func.now())
            )
