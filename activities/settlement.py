"""Settlement cycles: claim settleable orders, write statement lines in pages, aggregate, verify, approve.

Pages are their own transactions and idempotent (lines are unique per cycle and order, and an order's
line is its claim), so a worker killed mid-cycle resumes from the last heartbeat and writes nothing
twice; the cycle's advisory lock (db/settlement_work.py) keeps a timed-out attempt from committing a
page after aggregation. Workflow history only ever sees cycle ids, statement ids and counts.
"""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime

from sqlalchemy import func, select, update
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from temporalio import activity

from activities.heartbeat import beating
from activities.refusals import refuse
from activities.statements import approve_statement
from db import settlement_work as work
from db.engine import unit_of_work
from db.models import SettlementCycle, SettlementStatement
from domain.refusals import Refusal
from domain.settlement import (
    AUTO,
    UNDECIDED,
    BuildResult,
    CycleOpen,
    CycleState,
    CycleStatus,
    Decided,
    StatementRef,
    StatementStatus,
)
from domain.statement_rules import auto_approvable

# How often a cycle waiting for finance looks whether every statement is decided (one cheap count).
DECIDED_POLL_SECONDS = 2.0


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
        """Claim and aggregate in one activity: what cycles started before claim/aggregate existed call."""
        await self.claim(cycle_id, page_size)
        return await self.aggregate(cycle_id)

    @activity.defn(name="settlement.claim")
    async def claim(self, cycle_id: str, page_size: int) -> int:
        """Claim settleable orders up to the cutoff and write their lines, a page per transaction, in two
        loops at once, one from each end of the queue. A page is nearly all PostgreSQL's work, which runs a
        statement on one core: two keep a second core busy where there is one. Each loop stops at its
        first short page, which has walked all the queue the other loop has not (the rows it skipped were
        locked by the other loop's page, or by another cycle or a refund, as for a loop on its own). A
        retried attempt walks the queue again (claimed orders are gone)."""
        info = activity.info()
        claimed = int(info.heartbeat_details[0]) if info.heartbeat_details else 0
        window = work.Window()

        async def claim_pages(newest: bool) -> None:
            nonlocal claimed
            while True:
                async with unit_of_work(self._sessions) as session:
                    n = await work.claim_page(session, cycle_id, page_size, window, newest=newest)
                claimed += n
                activity.heartbeat(claimed)
                if n < page_size:
                    return

        async with asyncio.TaskGroup() as loops:  # one failing cancels the other: the attempt fails whole
            loops.create_task(claim_pages(newest=False))
            loops.create_task(claim_pages(newest=True))
        return claimed

    @activity.defn(name="settlement.aggregate")
    async def aggregate(self, cycle_id: str) -> BuildResult:
        """Write the cycle's statements from its lines and close claiming, in one transaction."""
        async with unit_of_work(self._sessions) as session:
            return await work.aggregate(session, cycle_id)

    @activity.defn(name="settlement.verify")
    async def verify(self, cycle_id: str) -> int:
        """Claims, lines, statement totals and the escrow to be released (per currency) must agree before
        anything is posted. Returns the amount the cycle will release from escrow. A cycle that does not
        add up fails and releases its claims (in the same transaction) so the orders settle next time."""
        async with beating(), unit_of_work(self._sessions) as session:
            cycle = await work.lock_cycle(session, cycle_id)
            if cycle.status == CycleStatus.FAILED.value:
                problems = [cycle.failure or "failed"]
            else:
                problems, released = await work.problems(session, cycle_id)
                if problems:
                    cycle.status = CycleStatus.FAILED.value
                    cycle.failure = "; ".join(problems)
                    cycle.closed_at = datetime.now(UTC)
                    await work.release(session, cycle_id)
        if problems:
            raise refuse(Refusal.SETTLEMENT_MISMATCH, f"cycle {cycle_id} does not add up: " + "; ".join(problems))
        return released

    @activity.defn(name="settlement.auto_approve")
    async def auto_approve(self, cycle_id: str, max_net_minor: int) -> int:
        """Approve, as "auto", every pending statement the rule lets approve itself (one transaction each)."""
        approved = 0
        after_id = 0  # statements are visited once each, in id order
        while True:
            async with unit_of_work(self._sessions) as session:
                st = (
                    await session.execute(
                        select(SettlementStatement)
                        .where(
                            SettlementStatement.cycle_id == cycle_id,
                            SettlementStatement.status == StatementStatus.PENDING_APPROVAL.value,
                            SettlementStatement.id > after_id,
                        )
                        .order_by(SettlementStatement.id)
                        .limit(1)
                        .with_for_update(skip_locked=True)
                    )
                ).scalar_one_or_none()
                if st is None:
                    return approved
                after_id = st.id
                if auto_approvable(st.net_minor, max_net_minor):
                    # A statement whose entry cannot be posted is marked FAILED (with why) and the loop goes on.
                    approved += int(await approve_statement(session, st, AUTO))
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
                        SettlementStatement.status.in_([s.value for s in UNDECIDED]),
                    )
                    .order_by(SettlementStatement.id)
                    .limit(limit)
                )
            ).scalars()
            return [
                StatementRef(
                    statement_id=s.id,
                    merchant_id=s.merchant_id,
                    currency=s.currency,
                    net_minor=s.net_minor,
                    failure=s.failure,
                )
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

    @activity.defn(name="settlement.await_decided")
    async def await_decided(self, cycle_id: str) -> Decided:
        """Wait (heartbeating) until finance has decided every statement of the cycle. One long activity
        instead of the cycle awaiting thousands of children keeps the cycle's history small."""
        while True:
            async with unit_of_work(self._sessions) as session:
                counts = dict(
                    (
                        await session.execute(
                            select(SettlementStatement.status, func.count())
                            .where(SettlementStatement.cycle_id == cycle_id)
                            .group_by(SettlementStatement.status)
                        )
                    ).all()
                )
            if not any(counts.get(s.value) for s in UNDECIDED):
                return Decided(
                    approved=counts.get(StatementStatus.APPROVED.value, 0),
                    rejected=counts.get(StatementStatus.REJECTED.value, 0),
                )
            activity.heartbeat()
            await asyncio.sleep(DECIDED_POLL_SECONDS)
