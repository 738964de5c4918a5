"""Settlement cycles: claim settleable orders, write statement lines in pages, verify, approve, reject.

Pages are their own transactions and idempotent (lines are unique per cycle and order; a claimed order
carries its cycle), so a worker killed mid-cycle resumes from the last heartbeat and writes nothing
twice. Workflow history only ever sees cycle ids, statement ids and counts.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import cast

from sqlalchemy import Table, and_, exists, func, literal, select, update
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from temporalio import activity
from temporalio.exceptions import ApplicationError

from db import ledger
from db.engine import unit_of_work
from db.models import Order, Refund, SettlementCycle, SettlementLine, SettlementStatement
from domain import ledger as rules
from domain.commission import split
from domain.refunds import RefundStatus
from domain.settlement import (
    AUTO,
    AdjustmentRecord,
    BuildResult,
    CycleOpen,
    CycleState,
    CycleStatus,
    Decision,
    StatementOutcome,
    StatementRef,
    StatementStatus,
)

LINES = cast(Table, SettlementLine.__table__)  # the Core table: inserting a list of rows is an executemany
IN_FLIGHT = [RefundStatus.PROCESSING.value, RefundStatus.MANUAL_PENDING.value]


def _refused(message: str, type_: str) -> ApplicationError:
    return ApplicationError(message, type=type_, non_retryable=True)


async def post_statement(session: AsyncSession, st: SettlementStatement) -> int:
    """SETTLEMENT for one statement: escrow released to merchant net, commission and each promoter."""
    promoters = dict(
        (
            await session.execute(
                select(SettlementLine.promoter_id, func.sum(SettlementLine.promoter_minor))
                .where(
                    SettlementLine.cycle_id == st.cycle_id,
                    SettlementLine.merchant_id == st.merchant_id,
                    SettlementLine.promoter_id.is_not(None),
                )
                .group_by(SettlementLine.promoter_id)
            )
        )
        .tuples()
        .all()
    )
    posting = rules.settlement(
        f"settlement:{st.id}",
        f"statement-{st.id}",
        st.currency,
        merchant_id=st.merchant_id,
        merchant_net=st.net_minor + st.adjustment_minor,
        commission=st.commission_minor - st.adjustment_minor,
        promoters={str(p): int(v) for p, v in promoters.items()},
    )
    return (await ledger.post(session, posting)).entry_id


class SettlementActivities:
    def __init__(self, sessions: async_sessionmaker[AsyncSession]) -> None:
        self._sessions = sessions

    @activity.defn(name="settlement.open_cycle")
    async def open_cycle(self, c: CycleOpen) -> CycleState:
        async with unit_of_work(self._sessions) as session:
            await session.execute(
                insert(SettlementCycle)
                .values(id=c.cycle_id, cutoff=c.cutoff, status=CycleStatus.RUNNING.value, triggered_by=c.triggered_by)
                .on_conflict_do_nothing()
            )
            cycle = (
                await session.execute(select(SettlementCycle).where(SettlementCycle.cutoff == c.cutoff))
            ).scalar_one()
            return CycleState(
                cycle_id=cycle.id, status=CycleStatus(cycle.status), orders=cycle.orders, statements=cycle.statements
            )

    @activity.defn(name="settlement.build")
    async def build(self, cycle_id: str, page_size: int) -> BuildResult:
        """Claim settleable orders up to the cutoff and write their lines, a page per transaction."""
        claimed = int(activity.info().heartbeat_details[0]) if activity.info().heartbeat_details else 0
        while True:
            async with unit_of_work(self._sessions) as session:
                n = await self._claim_page(session, cycle_id, page_size)
            claimed += n
            activity.heartbeat(claimed)
            if n < page_size:
                break
        async with unit_of_work(self._sessions) as session:
            await session.execute(
                insert(SettlementStatement)
                .from_select(
                    [
                        "cycle_id",
                        "merchant_id",
                        "currency",
                        "status",
                        "order_count",
                        "gross_minor",
                        "refunded_minor",
                        "commission_minor",
                        "promoter_minor",
                        "net_minor",
                        "adjustment_minor",
                    ],
                    select(
                        SettlementLine.cycle_id,
                        SettlementLine.merchant_id,
                        Order.currency,
                        literal(StatementStatus.PENDING_APPROVAL.value),
                        func.count(),
                        func.sum(SettlementLine.gross_minor),
                        func.sum(SettlementLine.refunded_minor),
                        func.sum(SettlementLine.commission_minor),
                        func.sum(SettlementLine.promoter_minor),
                        func.sum(SettlementLine.net_minor),
                        literal(0),
                    )
                    .join(Order, Order.order_no == SettlementLine.order_no)
                    .where(SettlementLine.cycle_id == cycle_id)
                    .group_by(SettlementLine.cycle_id, SettlementLine.merchant_id, Order.currency),
                )
                .on_conflict_do_nothing()
            )
            orders = (
                await session.execute(
                    select(func.count()).select_from(SettlementLine).where(SettlementLine.cycle_id == cycle_id)
                )
            ).scalar_one()
            statements = (
                await session.execute(
                    select(func.count())
                    .select_from(SettlementStatement)
                    .where(SettlementStatement.cycle_id == cycle_id)
                )
            ).scalar_one()
            await session.execute(
                update(SettlementCycle)
                .where(SettlementCycle.id == cycle_id)
                .values(orders=orders, statements=statements)
            )
            return BuildResult(orders=int(orders), statements=int(statements))

    async def _claim_page(self, session: AsyncSession, cycle_id: str, page_size: int) -> int:
        cutoff = (
            await session.execute(select(SettlementCycle.cutoff).where(SettlementCycle.id == cycle_id))
        ).scalar_one()
        page = (
            select(Order.order_no)
            .where(
                # Spelled as the partial index ix_orders_settlement_queue is, so the planner can use it.
                Order.settleable,
                ~Order.settled,
                Order.settlement_cycle.is_(None),
                Order.settleable_at <= cutoff,
                # An order with a refund still under way waits for the next cycle: its split is not final.
                ~exists().where(Refund.order_no == Order.order_no, Refund.status.in_(IN_FLIGHT)),
            )
            .order_by(Order.settleable_at, Order.order_no)
            .limit(page_size)
            .with_for_update(skip_locked=True)
            .scalar_subquery()
        )
        orders = (
            await session.execute(
                update(Order)
                .where(Order.order_no.in_(page))
                .values(settlement_cycle=cycle_id)
                .returning(
                    Order.order_no,
                    Order.merchant_id,
                    Order.paid_minor,
                    Order.refunded_minor,
                    Order.promoter_id,
                    Order.promoter_bps,
                    Order.commission_rule_id,
                    Order.commission_bps,
                    Order.commission_snapshot,
                )
            )
        ).all()
        if not orders:
            return 0
        lines = []
        for o in orders:
            snap = o.commission_snapshot or {}
            s = split(
                o.paid_minor,
                o.refunded_minor,
                rate_bps=o.commission_bps,
                floor_minor=snap.get("floor_minor"),
                cap_minor=snap.get("cap_minor"),
                promoter_bps=o.promoter_bps if o.promoter_id else 0,
            )
            lines.append(
                {
                    "cycle_id": cycle_id,
                    "merchant_id": o.merchant_id,
                    "order_no": o.order_no,
                    "promoter_id": o.promoter_id,
                    "gross_minor": o.paid_minor,
                    "refunded_minor": o.refunded_minor,
                    "commission_minor": s.commission_minor,
                    "promoter_minor": s.promoter_minor,
                    "net_minor": s.merchant_net_minor,
                    "rule_id": o.commission_rule_id,
                    "rule": snap,
                }
            )
        # executemany of one prepared statement: a 5000-row VALUES list is re-parsed on every page.
        await session.execute(insert(LINES).on_conflict_do_nothing(), lines)
        return len(orders)

    @activity.defn(name="settlement.verify")
    async def verify(self, cycle_id: str) -> int:
        """Lines, statement totals and the escrow to be released must agree before anything is posted.
        Returns the amount the cycle will release from escrow."""
        async with unit_of_work(self._sessions) as session:
            bad_lines = (
                await session.execute(
                    select(func.count())
                    .select_from(SettlementLine)
                    .where(
                        SettlementLine.cycle_id == cycle_id,
                        (
                            SettlementLine.gross_minor - SettlementLine.refunded_minor
                            != SettlementLine.commission_minor
                            + SettlementLine.promoter_minor
                            + SettlementLine.net_minor
                        )
                        | (SettlementLine.net_minor < 0)
                        | (SettlementLine.commission_minor < 0)
                        | (SettlementLine.promoter_minor < 0),
                    )
                )
            ).scalar_one()
            sums = (
                select(
                    SettlementLine.merchant_id.label("merchant_id"),
                    func.count().label("n"),
                    func.sum(SettlementLine.net_minor).label("net"),
                    func.sum(SettlementLine.commission_minor).label("com"),
                    func.sum(SettlementLine.gross_minor - SettlementLine.refunded_minor).label("base"),
                )
                .where(SettlementLine.cycle_id == cycle_id)
                .group_by(SettlementLine.merchant_id)
                .subquery()
            )
            mismatched = (
                await session.execute(
                    select(func.count())
                    .select_from(SettlementStatement)
                    .join(sums, sums.c.merchant_id == SettlementStatement.merchant_id, isouter=True)
                    .where(
                        SettlementStatement.cycle_id == cycle_id,
                        ~and_(
                            SettlementStatement.order_count == sums.c.n,
                            SettlementStatement.net_minor == sums.c.net,
                            SettlementStatement.commission_minor == sums.c.com,
                            SettlementStatement.gross_minor - SettlementStatement.refunded_minor == sums.c.base,
                        ),
                    )
                )
            ).scalar_one()
            release = int(
                (
                    await session.execute(
                        select(
                            func.coalesce(
                                func.sum(SettlementStatement.gross_minor - SettlementStatement.refunded_minor), 0
                            )
                        ).where(SettlementStatement.cycle_id == cycle_id)
                    )
                ).scalar_one()
            )
            escrow = await ledger.balance_of(session, rules.ESCROW, "CNY")
            problems = []
            if bad_lines:
                problems.append(f"{bad_lines} lines do not add up")
            if mismatched:
                problems.append(f"{mismatched} statements disagree with their lines")
            if release > escrow:
                problems.append(f"the cycle would release {release} but escrow holds {escrow}")
            if problems:
                async with unit_of_work(self._sessions) as failing:
                    await failing.execute(
                        update(SettlementCycle)
                        .where(SettlementCycle.id == cycle_id)
                        .values(status=CycleStatus.FAILED.value, failure="; ".join(problems))
                    )
                raise _refused(f"cycle {cycle_id} does not add up: " + "; ".join(problems), "SETTLEMENT_MISMATCH")
            return release

    @activity.defn(name="settlement.auto_approve")
    async def auto_approve(self, cycle_id: str, max_net_minor: int) -> int:
        """Approve, as "auto", every pending statement whose net is within the threshold (one transaction each)."""
        approved = 0
        while True:
            async with unit_of_work(self._sessions) as session:
                st = (
                    await session.execute(
                        select(SettlementStatement)
                        .where(
                            SettlementStatement.cycle_id == cycle_id,
                            SettlementStatement.status == StatementStatus.PENDING_APPROVAL.value,
                            SettlementStatement.net_minor <= max_net_minor,
                        )
                        .order_by(SettlementStatement.id)
                        .limit(1)
                        .with_for_update(skip_locked=True)
                    )
                ).scalar_one_or_none()
                if st is None:
                    return approved
                await self._approve(session, st, AUTO)
            approved += 1
            activity.heartbeat(approved)

    @activity.defn(name="settlement.pending_page")
    async def pending_page(self, cycle_id: str, after_id: int, limit: int) -> list[StatementRef]:
        async with unit_of_work(self._sessions) as session:
            rows = (
                await session.execute(
                    select(SettlementStatement)
                    .where(
                        SettlementStatement.cycle_id == cycle_id,
                        SettlementStatement.id > after_id,
                        SettlementStatement.status == StatementStatus.PENDING_APPROVAL.value,
                    )
                    .order_by(SettlementStatement.id)
                    .limit(limit)
                )
            ).scalars()
            return [
                StatementRef(statement_id=s.id, merchant_id=s.merchant_id, currency=s.currency, net_minor=s.net_minor)
                for s in rows
            ]

    async def _approve(self, session: AsyncSession, st: SettlementStatement, by: str) -> None:
        # Orders refunded in full release nothing: they are settled without a posting.
        if st.gross_minor > st.refunded_minor:
            st.ledger_entry_id = await post_statement(session, st)
        st.status = StatementStatus.APPROVED.value
        st.approved_by = by
        st.decided_at = datetime.now(UTC)
        await session.execute(
            update(Order)
            .where(Order.settlement_cycle == st.cycle_id, Order.merchant_id == st.merchant_id)
            .values(settled=True)
        )

    async def _pending(self, session: AsyncSession, statement_id: int) -> SettlementStatement | None:
        st = await session.get(SettlementStatement, statement_id, with_for_update=True)
        if st is None:
            raise RuntimeError(f"statement {statement_id} does not exist")
        return st if st.status == StatementStatus.PENDING_APPROVAL.value else None

    @activity.defn(name="settlement.approve")
    async def approve(self, d: Decision) -> StatementOutcome:
        async with unit_of_work(self._sessions) as session:
            st = await self._pending(session, d.statement_id)
            if st is not None:
                await self._approve(session, st, d.by)
            final = await session.get(SettlementStatement, d.statement_id)
            assert final is not None
            return StatementOutcome(
                statement_id=d.statement_id, status=StatementStatus(final.status), by=final.approved_by or d.by
            )

    @activity.defn(name="settlement.reject")
    async def reject(self, d: Decision) -> StatementOutcome:
        """The statement is void; its orders go back to the queue for the next cycle."""
        async with unit_of_work(self._sessions) as session:
            st = await self._pending(session, d.statement_id)
            if st is not None:
                st.status = StatementStatus.REJECTED.value
                st.rejected_reason = d.note
                st.decided_at = datetime.now(UTC)
                await session.execute(
                    update(Order)
                    .where(Order.settlement_cycle == st.cycle_id, Order.merchant_id == st.merchant_id)
                    .values(settlement_cycle=None)
                )
            return StatementOutcome(statement_id=d.statement_id, status=StatementStatus.REJECTED, by=d.by)

    @activity.defn(name="settlement.adjust")
    async def adjust(self, a: AdjustmentRecord) -> None:
        async with unit_of_work(self._sessions) as session:
            st = await self._pending(session, a.statement_id)
            if st is None:
                raise _refused(f"statement {a.statement_id} is no longer pending", "NOT_PENDING")
            if st.commission_minor - a.amount_minor < 0 or st.net_minor + a.amount_minor < 0:
                raise _refused(
                    f"an adjustment of {a.amount_minor} would make the commission or the net negative",
                    "ADJUSTMENT_TOO_LARGE",
                )
            st.adjustment_minor = a.amount_minor
            st.adjustment_reason = a.reason
            st.adjusted_by = a.by
            st.adjusted_by_key_id = a.by_key_id

    @activity.defn(name="settlement.close_cycle")
    async def close_cycle(self, cycle_id: str) -> None:
        async with unit_of_work(self._sessions) as session:
            await session.execute(
                update(SettlementCycle)
                .where(SettlementCycle.id == cycle_id, SettlementCycle.status == "RUNNING")
                .values(status=CycleStatus.CLOSED.value, closed_at=datetime.now(UTC))
            )
