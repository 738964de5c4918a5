"""The set-based steps of a settlement cycle: claim a page, aggregate statements, check, release.

Every step that writes a cycle's claims or statements first takes the cycle's transaction-scoped
advisory lock (claim pages share it among themselves), so they are serialised per cycle: a claim page of
an attempt that timed out either commits before the statements are aggregated (and is in them) or finds
the cycle aggregated and writes nothing. Orders are claimed by taking them out of the settlement queue,
as a refund being opened does.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy import ColumnElement, and_, exists, func, literal, select, text, update
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from db import ledger
from db import settlement_sql as sql
from db.models import Order, SettlementCycle, SettlementLine, SettlementQueued, SettlementStatement
from domain import accounts
from domain.settlement import BuildResult, CycleStatus, StatementStatus


async def lock_cycle(session: AsyncSession, cycle_id: str, *, shared: bool = False) -> SettlementCycle:
    """Take the cycle's advisory lock (until the transaction ends) and read the cycle. Claim pages take it
    shared, so a cycle's pages may run side by side (their rows kept apart by SKIP LOCKED), and every other
    step exclusive, so it waits for the pages under way and the pages after it see what it did."""
    lock = "pg_advisory_xact_lock_shared" if shared else "pg_advisory_xact_lock"
    await session.execute(text(f"SELECT {lock}(hashtext(:k))"), {"k": f"settlement-cycle:{cycle_id}"})
    cycle = (
        await session.execute(
            select(SettlementCycle).where(SettlementCycle.id == cycle_id).execution_options(populate_existing=True)
        )
    ).scalar_one()
    return cycle


@dataclass
class Window:
    """What is left of the queue for a cycle's claim to walk: the orders strictly between `low` and `high`,
    (settleable_at, order_no) keys in queue order. Claiming from the oldest end raises `low` past each
    page, from the newest end lowers `high`: two loops, one from each end, meet in the middle without
    walking over each other's rows."""

    low: tuple[datetime, str] = (datetime.min.replace(tzinfo=UTC), "")
    high: tuple[datetime, str] = (datetime.max.replace(tzinfo=UTC), "")


async def claim_page(
    session: AsyncSession, cycle_id: str, page_size: int, window: Window | None = None, *, newest: bool = False
) -> int:
    """Claim one page of the queue inside `window`, from its oldest end (or its `newest`), by writing the
    orders' lines with the split computed in SQL, in one statement (db/settlement_sql.py: CLAIM_OLDEST),
    and move that end of the window past the page. Returns how many it claimed: a short page has walked
    the whole window. 0 once aggregated."""
    window = window or Window()
    cycle = await lock_cycle(session, cycle_id, shared=True)
    if cycle.aggregated_at is None:
        page = (
            await session.execute(
                text(sql.CLAIM_NEWEST if newest else sql.CLAIM_OLDEST),
                {
                    "cycle_id": cycle_id,
                    "cutoff": cycle.cutoff,
                    "page_size": page_size,
                    "low_at": window.low[0],
                    "low_no": window.low[1],
                    "high_at": window.high[0],
                    "high_no": window.high[1],
                },
            )
        ).one_or_none()
        if page is not None:
            end = (page.settleable_at, page.order_no)
            if newest:
                window.high = end
            else:
                window.low = end
            return int(page.claimed)
    return 0


async def settlement_of(session: AsyncSession, order_no: str, *, unqueue: bool = False) -> tuple[str | None, bool]:
    """The cycle whose line claims the order (or settled it: its statement was approved), if any, and
    whether it settled it. With `unqueue`, first takes the order out of the settlement queue (holding its
    row until the transaction ends), so that a claim page holding the row commits first and is seen, or
    skips the order: what a refund being opened needs."""
    if unqueue:
        await session.execute(text(sql.UNQUEUE), {"order_no": order_no})
    found = (await session.execute(text(sql.SETTLEMENT_OF), {"order_no": order_no})).one_or_none()
    return (None, False) if found is None else (str(found.cycle_id), bool(found.settled))


async def queue_order(session: AsyncSession, order_no: str) -> None:
    """Queue the order for the next cycle if a cycle may claim it now (db/settlement_sql.py: _QUEUE): it
    became settleable, or a refund of it ended. The caller holds the order's row lock, which refunds take
    too, and has flushed what it changed."""
    await session.execute(text(sql.QUEUE_ORDER), {"order_no": order_no})


def settled() -> ColumnElement[bool]:
    """An order (of `orders`) is settled: its line is in an approved statement."""
    return exists().where(
        SettlementLine.order_no == Order.order_no,
        SettlementStatement.cycle_id == SettlementLine.cycle_id,
        SettlementStatement.merchant_id == SettlementLine.merchant_id,
        SettlementStatement.status == StatementStatus.APPROVED.value,
    )


def claimed(cycle_id: str | None = None) -> ColumnElement[bool]:
    """The order is claimed by a live line (of `cycle_id`, if given), settled ones included: LIVE_LINES
    as an expression over `orders`."""
    line = SettlementLine.cycle_id == cycle_id if cycle_id else literal(True)
    return exists().where(
        SettlementLine.order_no == Order.order_no,
        line,
        SettlementCycle.id == SettlementLine.cycle_id,
        SettlementCycle.status != CycleStatus.FAILED.value,
        ~exists().where(
            SettlementStatement.cycle_id == SettlementLine.cycle_id,
            SettlementStatement.merchant_id == SettlementLine.merchant_id,
            SettlementStatement.status == StatementStatus.REJECTED.value,
        ),
    )


async def aggregate(session: AsyncSession, cycle_id: str) -> BuildResult:
    """One statement per merchant and currency from the cycle's lines; closes claiming. Idempotent."""
    cycle = await lock_cycle(session, cycle_id)
    if cycle.aggregated_at is None:
        # Claiming has just written a whole cycle of lines, which the planner's statistics know nothing
        # of yet: with them stale it estimates a cycle's lines as one row and picks plans for the
        # approvals that are fine for one row and slow for 100,000. ANALYZE samples a bounded number of
        # rows, whatever the size. (Claiming writes no order row, so the orders' statistics still hold.)
        # Only the columns the later steps pick and group lines by: the table's row count is refreshed
        # whatever the columns, and the others (the JSONB rule above all) took most of its time.
        await session.execute(text("ANALYZE settlement_lines (cycle_id, merchant_id, promoter_id)"))
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
                    SettlementLine.currency,
                    literal(StatementStatus.PENDING_APPROVAL.value),
                    func.count(),
                    func.sum(SettlementLine.gross_minor),
                    func.sum(SettlementLine.refunded_minor),
                    func.sum(SettlementLine.commission_minor),
                    func.sum(SettlementLine.promoter_minor),
                    func.sum(SettlementLine.net_minor),
                    literal(0),
                )
                .where(SettlementLine.cycle_id == cycle_id)
                .group_by(SettlementLine.cycle_id, SettlementLine.merchant_id, SettlementLine.currency),
            )
            .on_conflict_do_nothing()
        )
        cycle.orders = await _count(session, select(func.count()).where(SettlementLine.cycle_id == cycle_id))
        cycle.statements = await _count(session, select(func.count()).where(SettlementStatement.cycle_id == cycle_id))
        cycle.aggregated_at = datetime.now(UTC)
    return BuildResult(orders=cycle.orders, statements=cycle.statements)


async def _count(session: AsyncSession, q: object) -> int:
    return int((await session.execute(q)).scalar_one())  # type: ignore[call-overload]


async def problems(session: AsyncSession, cycle_id: str) -> tuple[list[str], int]:
    """What keeps the cycle from posting anything, and the amount it will release from escrow."""
    found = []
    # Every order the cycle claimed has left the queue, and every line is in exactly one statement (a page
    # committed after aggregation would break the second).
    queued = await _count(
        session,
        select(func.count())
        .select_from(SettlementLine)
        .join(SettlementQueued, SettlementQueued.order_no == SettlementLine.order_no)
        .where(SettlementLine.cycle_id == cycle_id),
    )
    if queued:
        found.append(f"{queued} claimed orders are still queued")
    orphans = await _count(
        session,
        select(func.count())
        .select_from(SettlementLine)
        .where(
            SettlementLine.cycle_id == cycle_id,
            ~exists().where(
                SettlementStatement.cycle_id == cycle_id,
                SettlementStatement.merchant_id == SettlementLine.merchant_id,
                SettlementStatement.currency == SettlementLine.currency,
            ),
        ),
    )
    if orphans:
        found.append(f"{orphans} lines are in no statement")
    bad_lines = await _count(
        session,
        select(func.count()).where(
            SettlementLine.cycle_id == cycle_id,
            (
                SettlementLine.gross_minor - SettlementLine.refunded_minor
                != SettlementLine.commission_minor + SettlementLine.promoter_minor + SettlementLine.net_minor
            )
            | (SettlementLine.net_minor < 0)
            | (SettlementLine.commission_minor < 0)
            | (SettlementLine.promoter_minor < 0),
        ),
    )
    if bad_lines:
        found.append(f"{bad_lines} lines do not add up")
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
    mismatched = await _count(
        session,
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
        ),
    )
    if mismatched:
        found.append(f"{mismatched} statements disagree with their lines")
    releases = (
        await session.execute(
            select(
                SettlementStatement.currency,
                func.sum(SettlementStatement.gross_minor - SettlementStatement.refunded_minor),
            )
            .where(SettlementStatement.cycle_id == cycle_id)
            .group_by(SettlementStatement.currency)
        )
    ).all()
    for currency, amount in releases:
        escrow = await ledger.balance_of(session, accounts.ESCROW, currency)
        if amount > escrow:
            found.append(f"the cycle would release {amount} {currency} but escrow holds {escrow}")
    return found, sum(int(amount) for _, amount in releases)


async def release(session: AsyncSession, cycle_id: str) -> None:
    """A cycle that failed its checks (marked FAILED by the caller) posted nothing: its statements are void
    and its orders go back to the queue for the next cycle (nothing stays claimed by a cycle that will
    never settle it)."""
    await session.execute(
        update(SettlementStatement)
        .where(
            SettlementStatement.cycle_id == cycle_id,
            SettlementStatement.status == StatementStatus.PENDING_APPROVAL.value,
        )
        .values(status=StatementStatus.REJECTED.value, rejected_reason="the cycle failed its checks")
    )
    await session.flush()  # the cycle's FAILED status: its lines are no longer live
    await session.execute(text(sql.REQUEUE.format(lines="l.cycle_id = :cycle_id")), {"cycle_id": cycle_id})
