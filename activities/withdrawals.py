"""Withdrawal records: the activities of the withdrawal flow.

Open (checks and freeze under a lock on the merchant), finance's decision, the outcome with its posting,
and the comparison of a bank result that comes after the outcome was recorded. Each is one transaction,
idempotent on the withdrawal id. The payout batch's activities are in `activities.payouts`.
"""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from temporalio import activity

from activities.refusals import carried, refuse
from db import ledger
from db.audit import record_decision
from db.engine import unit_of_work
from db.models import KycCheckResult, Merchant, MerchantApplication, MerchantOnboarding, Withdrawal
from domain import accounts
from domain import ledger as rules
from domain.merchants import KycCheck, KycStatus
from domain.refusals import Refusal
from domain.withdrawal_eligibility import WithdrawalFacts, check_eligible, day_start, opening_status
from domain.withdrawals import (
    COUNTING,
    DecisionRecord,
    LateVerdict,
    PayoutOutcome,
    WithdrawalInput,
    WithdrawalOpened,
    WithdrawalStatus,
    conflict_note,
    late_result,
)


async def verified_account(session: AsyncSession, merchant_id: str) -> MerchantApplication | None:
    """The settlement account of the merchant's current application, if KYC confirmed it belongs to it."""
    state = await session.get(MerchantOnboarding, merchant_id)
    if state is None:
        return None
    passed = (
        await session.execute(
            select(KycCheckResult.id).where(
                KycCheckResult.merchant_id == merchant_id,
                KycCheckResult.version == state.application_version,
                KycCheckResult.kind == KycCheck.BANK.value,
                KycCheckResult.status == KycStatus.PASS.value,
            )
        )
    ).first()
    if passed is None:
        return None
    found: MerchantApplication | None = (
        await session.execute(
            select(MerchantApplication).where(
                MerchantApplication.merchant_id == merchant_id,
                MerchantApplication.version == state.application_version,
            )
        )
    ).scalar_one_or_none()
    return found


async def requested_since(session: AsyncSession, merchant_id: str, since: datetime) -> int:
    """What the merchant asked to withdraw since `since` that still counts against its daily limit."""
    used = await session.execute(
        select(func.coalesce(func.sum(Withdrawal.amount_minor), 0)).where(
            Withdrawal.merchant_id == merchant_id,
            Withdrawal.created_at >= since,
            Withdrawal.status.in_([s.value for s in COUNTING]),
        )
    )
    return int(used.scalar_one())


def _opened(w: Withdrawal) -> WithdrawalOpened:
    return WithdrawalOpened(
        withdrawal_id=w.withdrawal_id,
        status=WithdrawalStatus(w.status),
        merchant_id=w.merchant_id,
        amount_minor=w.amount_minor,
        currency=w.currency,
    )


class WithdrawalActivities:
    def __init__(self, sessions: async_sessionmaker[AsyncSession]) -> None:
        self._sessions = sessions

    @activity.defn(name="withdrawals.open")
    async def open(self, inp: WithdrawalInput) -> WithdrawalOpened:
        """Check and freeze. The merchant row is locked first, so one merchant's requests queue here: the
        daily limit and the balance are read and the freeze posted with no other request in between."""
        async with unit_of_work(self._sessions) as session:
            merchant = await session.get(Merchant, inp.merchant_id, with_for_update=True)
            if merchant is None:
                raise refuse(Refusal.MERCHANT_NOT_FOUND, f"merchant {inp.merchant_id} does not exist")
            existing = await session.get(Withdrawal, inp.withdrawal_id)
            if existing is not None:
                return _opened(existing)
            account = await verified_account(session, merchant.id)
            cur = merchant.currency
            facts = WithdrawalFacts(
                merchant_id=merchant.id,
                merchant_status=merchant.status,
                currency=cur,
                has_verified_account=account is not None,
                available_minor=await ledger.balance_of(
                    session, accounts.merchant_account(merchant.id, "available"), cur
                ),
                clawback_minor=await ledger.balance_of(
                    session, accounts.merchant_account(merchant.id, "clawback"), cur
                ),
                requested_today_minor=await requested_since(session, merchant.id, day_start(datetime.now(UTC))),
            )
            with carried():
                check_eligible(facts, inp.amount_minor, inp.terms)
            assert account is not None  # eligible: verified
            try:
                frozen = await ledger.post(
                    session,
                    rules.withdrawal_requested(
                        f"withdrawal:{inp.withdrawal_id}", inp.withdrawal_id, cur, inp.amount_minor, merchant.id
                    ),
                )
            except ledger.NegativeBalance as exc:  # the ledger's own guard, should the checks above ever miss
                raise refuse(Refusal.INSUFFICIENT_BALANCE, str(exc)) from None
            status = opening_status(inp.amount_minor, inp.terms)
            w = Withdrawal(
                withdrawal_id=inp.withdrawal_id,
                merchant_id=merchant.id,
                amount_minor=inp.amount_minor,
                currency=cur,
                status=status.value,
                bank_account_name=account.bank_account_name,
                bank_account_enc=account.bank_account_enc,
                bank_account_last4=account.bank_account_last4,
                bank_name=account.bank_name,
                requested_by=inp.requested_by,
                requested_by_key_id=inp.requested_by_key_id,
                freeze_entry_id=frozen.entry_id,
                queued_at=datetime.now(UTC) if status is WithdrawalStatus.QUEUED else None,
            )
            session.add(w)
            await session.flush()
            return _opened(w)

    @activity.defn(name="withdrawals.decide")
    async def decide(self, rec: DecisionRecord) -> WithdrawalStatus:
        """Approval queues the withdrawal for the next batch; rejection unfreezes the money."""
        async with unit_of_work(self._sessions) as session:
            w = await session.get(Withdrawal, rec.withdrawal_id, with_for_update=True)
            if w is None:
                raise RuntimeError(f"withdrawal {rec.withdrawal_id} was never opened")
            if w.status != WithdrawalStatus.PENDING_APPROVAL.value:
                return WithdrawalStatus(w.status)  # decided before (a retry)
            d = rec.decision
            w.decided_by, w.decision_note = d.by, d.note
            if d.kind == "approve":
                w.status, w.queued_at = WithdrawalStatus.QUEUED.value, datetime.now(UTC)
            else:
                posted = await ledger.post(
                    session,
                    rules.withdrawal_failed(
                        f"withdrawal-rejected:{w.withdrawal_id}",
                        w.withdrawal_id,
                        w.currency,
                        w.amount_minor,
                        w.merchant_id,
                    ),
                )
                w.status, w.outcome_entry_id, w.failure_reason = (
                    WithdrawalStatus.REJECTED.value,
                    posted.entry_id,
                    d.note,
                )
            # Finance's decision and its audit row commit together (a retry above records nothing).
            await record_decision(
                session,
                person=d.by,
                key_id=d.by_key_id,
                role="finance",
                action="withdrawal.approved" if d.kind == "approve" else "withdrawal.rejected",
                subject_type="withdrawal",
                subject_id=w.withdrawal_id,
                note=d.note,
            )
            return WithdrawalStatus(w.status)

    @activity.defn(name="withdrawals.record_outcome")
    async def record_outcome(self, o: PayoutOutcome, bank: str) -> WithdrawalStatus:
        """PAID posts WITHDRAWAL_PAID, FAILED posts WITHDRAWAL_FAILED (back to available), UNKNOWN only
        marks the money as held. The postings are keyed on the withdrawal, so each happens at most once."""
        async with unit_of_work(self._sessions) as session:
            w = await session.get(Withdrawal, o.withdrawal_id, with_for_update=True)
            if w is None:
                raise RuntimeError(f"withdrawal {o.withdrawal_id} was never opened")
            if w.status in (WithdrawalStatus.PAID.value, WithdrawalStatus.FAILED.value):
                return WithdrawalStatus(w.status)
            ref, cur, amount, m = w.withdrawal_id, w.currency, w.amount_minor, w.merchant_id
            if o.status == "PAID":
                posting = rules.withdrawal_paid(f"withdrawal-paid:{ref}", ref, cur, amount, m, bank)
            elif o.status == "FAILED":
                posting = rules.withdrawal_failed(f"withdrawal-failed:{ref}", ref, cur, amount, m)
            else:
                w.status, w.batch_id = WithdrawalStatus.UNKNOWN.value, o.batch_id or w.batch_id
                return WithdrawalStatus.UNKNOWN
            w.outcome_entry_id = (await ledger.post(session, posting)).entry_id
            w.status, w.bank_ref, w.failure_reason = o.status, o.bank_ref, o.reason
            w.batch_id, w.resolved_by = o.batch_id or w.batch_id, o.resolved_by
            if o.resolved_by is not None:  # finance's resolution: audited in the same transaction
                await record_decision(
                    session,
                    person=o.resolved_by,
                    key_id=o.resolved_by_key_id,
                    role="finance",
                    action="withdrawal.resolved",
                    subject_type="withdrawal",
                    subject_id=ref,
                    outcome=o.status,
                    reason=o.reason,
                    bank_ref=o.bank_ref,
                )
            return WithdrawalStatus(w.status)

    @activity.defn(name="withdrawals.compare_late_result")
    async def compare_late_result(self, o: PayoutOutcome) -> LateVerdict:
        """A bank result for a withdrawal whose flow may have finished (finance resolved it first). It never
        posts: a result that contradicts the recorded outcome is kept, the first one only, for finance."""
        async with unit_of_work(self._sessions) as session:
            w = await session.get(Withdrawal, o.withdrawal_id, with_for_update=True)
            if w is None:
                activity.logger.warning("a bank result for payout %s, which is no withdrawal", o.withdrawal_id)
                return "OPEN"
            recorded = WithdrawalStatus(w.status)
            verdict = late_result(recorded, o.status)
            if verdict == "CONFLICT" and w.bank_conflict is None:
                w.bank_conflict = conflict_note(recorded, o.status, o.reason, o.bank_ref)
            return verdict
