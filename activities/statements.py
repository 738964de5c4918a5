"""Settlement statements: their posting and finance's decisions on them (adjust, approve, reject)."""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import func, select, text
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from temporalio import activity

from activities.refusals import carried, refuse
from db import ledger
from db.audit import record_decision
from db.engine import unit_of_work
from db.models import SettlementLine, SettlementStatement
from db.settlement_sql import REQUEUE
from domain.refusals import Refusal
from domain.settlement import (
    UNDECIDED,
    AdjustmentRecord,
    Decision,
    StatementOutcome,
    StatementPostingError,
    StatementStatus,
    statement_posting,
)
from domain.statement_rules import check_adjustment


async def _promoters(session: AsyncSession, st: SettlementStatement) -> dict[str, int]:
    rows = await session.execute(
        select(SettlementLine.promoter_id, func.sum(SettlementLine.promoter_minor))
        .where(
            SettlementLine.cycle_id == st.cycle_id,
            SettlementLine.merchant_id == st.merchant_id,
            SettlementLine.promoter_id.is_not(None),
        )
        .group_by(SettlementLine.promoter_id)
    )
    return {str(p): int(v) for p, v in rows.all()}


async def approve_statement(session: AsyncSession, st: SettlementStatement, by: str) -> bool:
    """Post the statement (orders refunded in full release nothing and post nothing), which settles its
    orders: their lines are in an approved statement now (no order row is written).

    A statement whose entry cannot be built is marked FAILED with the reason instead (False): that is a
    fact about this statement alone, so it must not fail the transaction or stop the others."""
    if st.gross_minor > st.refunded_minor:
        try:
            posting = statement_posting(
                st.id,
                st.currency,
                merchant_id=st.merchant_id,
                net_minor=st.net_minor,
                commission_minor=st.commission_minor,
                adjustment_minor=st.adjustment_minor,
                promoters=await _promoters(session, st),
            )
        except StatementPostingError as exc:
            st.status = StatementStatus.FAILED.value
            st.failure = f"the settlement entry cannot be posted: {exc}"
            return False
        st.ledger_entry_id = (await ledger.post(session, posting)).entry_id
    st.status = StatementStatus.APPROVED.value
    st.approved_by = by
    st.decided_at = datetime.now(UTC)
    return True


async def _audit(session: AsyncSession, d: Decision | AdjustmentRecord, action: str, **details: object) -> None:
    """Finance's decision on a statement and its audit row commit in the same transaction."""
    await record_decision(
        session,
        person=d.by,
        key_id=d.by_key_id,
        role="finance",
        action=action,
        subject_type="settlement_statement",
        subject_id=str(d.statement_id),
        **details,
    )


class StatementActivities:
    def __init__(self, sessions: async_sessionmaker[AsyncSession]) -> None:
        self._sessions = sessions

    async def _pending(
        self, session: AsyncSession, statement_id: int, *, failed_too: bool = False
    ) -> SettlementStatement | None:
        st = await session.get(SettlementStatement, statement_id, with_for_update=True)
        if st is None:
            raise RuntimeError(f"statement {statement_id} does not exist")
        waiting = [s.value for s in UNDECIDED] if failed_too else [StatementStatus.PENDING_APPROVAL.value]
        return st if st.status in waiting else None

    @activity.defn(name="settlement.approve")
    async def approve(self, d: Decision) -> StatementOutcome:
        async with unit_of_work(self._sessions) as session:
            st = await self._pending(session, d.statement_id)
            if st is not None:
                await approve_statement(session, st, d.by)
                await _audit(session, d, "settlement.approved", note=d.note)
            final = await session.get(SettlementStatement, d.statement_id)
            assert final is not None
            return StatementOutcome(
                statement_id=d.statement_id,
                status=StatementStatus(final.status),
                by=final.approved_by or d.by,
                failure=final.failure,
            )

    @activity.defn(name="settlement.reject")
    async def reject(self, d: Decision) -> StatementOutcome:
        """The statement is void; its orders go back to the queue for the next cycle (a FAILED one too):
        its lines no longer claim them."""
        async with unit_of_work(self._sessions) as session:
            st = await self._pending(session, d.statement_id, failed_too=True)
            if st is not None:
                st.status = StatementStatus.REJECTED.value
                st.rejected_reason = d.note
                st.decided_at = datetime.now(UTC)
                await _audit(session, d, "settlement.rejected", note=d.note)
                await session.flush()  # REJECTED: its lines are no longer live
                await session.execute(
                    text(REQUEUE.format(lines="l.cycle_id = :cycle_id AND l.merchant_id = :merchant_id")),
                    {"cycle_id": st.cycle_id, "merchant_id": st.merchant_id},
                )
            return StatementOutcome(statement_id=d.statement_id, status=StatementStatus.REJECTED, by=d.by)

    @activity.defn(name="settlement.adjust")
    async def adjust(self, a: AdjustmentRecord) -> None:
        async with unit_of_work(self._sessions) as session:
            st = await self._pending(session, a.statement_id)
            if st is None:
                raise refuse(Refusal.NOT_PENDING, f"statement {a.statement_id} is no longer pending")
            with carried():
                check_adjustment(st.commission_minor, st.net_minor, a.amount_minor)
            st.adjustment_minor = a.amount_minor
            st.adjustment_reason = a.reason
            st.adjusted_by = a.by
            st.adjusted_by_key_id = a.by_key_id
            await _audit(session, a, "settlement.adjusted", amount_minor=a.amount_minor, reason=a.reason)
