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

from activities.refusals import refuse
from activities.statements import approve_statement
from db import ledger
from db.engine import unit_of_work
from db.models import Order, Refund, SettlementCycle, SettlementLine, SettlementStatement
from domain import ledger as rules
from domain.commission import split
from domain.refunds import RefundStatus
from domain.settlement import (
    AUTO,
    BuildResult,
    CycleOpen,
    CycleState,
    CycleStatus,
    StatementRef,
    StatementStatus,
)

LINES = cast(Table, SettlementLine.__table__)  # the Core table: inserting a list of rows is an executemany
IN_FLIGHT = [RefundStatus.PROCESSING.value, RefundStatus.MANUAL_PENDING.value]


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
        async with unit_of_work(self._sessions) as session:
            cycle = await session.get(SettlementCycle, cycle_id)
            assert cycle is not None
            cutoff = cycle.cutoff
        while True:
            async with unit_of_work(self._sessions) as session:
                n = await self._claim_page(session, cycle_id, cutoff, page_size)
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

    async def _claim_page(self, session: AsyncSession, cycle_id: str, cutoff: datetime, page_size: int) -> int:
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
        """Lines, statement totals and the escrow to be released (per currency) must agree before anything
        is posted. Returns the amount the cycle will release from escrow."""
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
            releases = (
                (
                    await session.execute(
                        select(
                            SettlementStatement.currency,
                            func.sum(SettlementStatement.gross_minor - SettlementStatement.refunded_minor),
                        )
                        .where(SettlementStatement.cycle_id == cycle_id)
                        .group_by(SettlementStatement.currency)
                    )
                )
                .tuples()
                .all()
            )
            problems = []
            for currency, amount in releases:
                escrow = await ledger.balance_of(session, rules.ESCROW, currency)
                if amount > escrow:
                    problems.append(f"the cycle would release {amount} {currency} but escrow holds {escrow}")
            if bad_lines:
                problems.append(f"{bad_lines} lines do not add up")
            if mismatched:
                problems.append(f"{mismatched} statements disagree with their lines")
            if problems:
                async with unit_of_work(self._sessions) as failing:
                    await failing.execute(
                        update(SettlementCycle)
                        .where(SettlementCycle.id == cycle_id)
                        .values(status=CycleStatus.FAILED.value, failure="; ".join(problems))
                    )
                raise refuse(f"cycle {cycle_id} does not add up: " + "; ".join(problems), "SETTLEMENT_MISMATCH")
            return sum(int(amount) for _, amount in releases)

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
                await approve_statement(session, st, AUTO)
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

    @activity.defn(name="settlement.close_cycle")
    async def close_cycle(self, cycle_id: str) -> None:
        async with unit_of_work(self._sessions) as session:
            await session.execute(
                update(SettlementCycle)
                .where(SettlementCycle.id == cycle_id, SettlementCycle.status == "RUNNING")
                .values(status=CycleStatus.CLOSED.value, closed_at=datetime.now(UTC))
            )
