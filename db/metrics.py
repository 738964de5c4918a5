"""Read queries behind the business metrics: counts taken from the records at scrape time.

Counting what the tables hold (rather than incrementing counters inside activities) is exactly right after
a restart and never counts an activity retry twice; each query is one aggregate over an indexed column."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from db.ledger import trial_balance
from db.models.orders import Order
from db.models.recon import ReconDiscrepancy
from db.models.refunds import Capture, Refund
from db.models.settlement import SettlementStatement
from db.models.withdrawals import Withdrawal

# Every other status (OPEN, HELD, and the resolution stages still to come) is a difference not yet settled.
FINAL_DISCREPANCY_STATUSES = ("RESOLVED", "WRITTEN_OFF")


@dataclass
class BusinessFigures:
    orders_by_status: dict[str, int] = field(default_factory=dict)
    captures: dict[tuple[str, str], tuple[int, int]] = field(default_factory=dict)
    """(channel, currency) -> (count, amount in minor units)."""
    refunds_by_status: dict[str, int] = field(default_factory=dict)
    withdrawals_by_status: dict[str, int] = field(default_factory=dict)
    statements_by_status: dict[str, int] = field(default_factory=dict)
    discrepancies_open: dict[tuple[str, str], tuple[int, datetime]] = field(default_factory=dict)
    """(type, status) of unresolved discrepancies -> (count, when the oldest was found)."""
    ledger_balanced: bool = True


async def business_figures(session: AsyncSession) -> BusinessFigures:
    out = BusinessFigures()
    for status, n in await session.execute(select(Order.status, func.count()).group_by(Order.status)):
        out.orders_by_status[status] = n
    captured = select(Capture.channel, Capture.currency, func.count(), func.sum(Capture.amount_minor)).group_by(
        Capture.channel, Capture.currency
    )
    for channel, currency, n, amount in await session.execute(captured):
        out.captures[(channel, currency)] = (n, int(amount))
    for status, n in await session.execute(select(Refund.status, func.count()).group_by(Refund.status)):
        out.refunds_by_status[status] = n
    for status, n in await session.execute(select(Withdrawal.status, func.count()).group_by(Withdrawal.status)):
        out.withdrawals_by_status[status] = n
    statements = select(SettlementStatement.status, func.count()).group_by(SettlementStatement.status)
    for status, n in await session.execute(statements):
        out.statements_by_status[status] = n
    unresolved = (
        select(ReconDiscrepancy.type, ReconDiscrepancy.status, func.count(), func.min(ReconDiscrepancy.created_at))
        .where(ReconDiscrepancy.status.not_in(FINAL_DISCREPANCY_STATUSES))
        .group_by(ReconDiscrepancy.type, ReconDiscrepancy.status)
    )
    for kind, status, n, oldest in await session.execute(unresolved):
        out.discrepancies_open[(kind, status)] = (n, oldest)
    out.ledger_balanced = bool((await trial_balance(session))["balanced"])
    return out
