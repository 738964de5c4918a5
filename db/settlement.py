"""Reading commission rules, cycles and statements for the API and for order pricing."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from db.models import CommissionRule, SettlementCycle, SettlementLine, SettlementStatement
from domain.commission import Rule, Scope


def to_rule(r: CommissionRule) -> Rule:
    return Rule(
        rule_id=r.id,
        scope=Scope(r.scope),
        scope_value=r.scope_value,
        rate_bps=r.rate_bps,
        floor_minor=r.floor_minor,
        cap_minor=r.cap_minor,
        priority=r.priority,
        valid_from=r.valid_from,
        valid_to=r.valid_to,
        active=r.active,
    )


async def active_rules(session: AsyncSession) -> list[Rule]:
    rows = (await session.execute(select(CommissionRule).where(CommissionRule.active.is_(True)))).scalars()
    return [to_rule(r) for r in rows]


async def all_rules(session: AsyncSession) -> list[Rule]:
    rows = (await session.execute(select(CommissionRule).order_by(CommissionRule.created_at))).scalars()
    return [to_rule(r) for r in rows]


def statement_view(st: SettlementStatement) -> dict[str, Any]:
    return {
        "id": st.id,
        "cycle_id": st.cycle_id,
        "merchant_id": st.merchant_id,
        "currency": st.currency,
        "status": st.status,
        "order_count": st.order_count,
        "gross_minor": st.gross_minor,
        "refunded_minor": st.refunded_minor,
        "commission_minor": st.commission_minor - st.adjustment_minor,
        "promoter_minor": st.promoter_minor,
        "net_minor": st.net_minor + st.adjustment_minor,
        "adjustment_minor": st.adjustment_minor,
        "adjustment_reason": st.adjustment_reason,
        "adjusted_by": st.adjusted_by,
        "approved_by": st.approved_by,
        "rejected_reason": st.rejected_reason,
        "failure": st.failure,
        "created_at": st.created_at,
        "decided_at": st.decided_at,
    }


async def statements(
    session: AsyncSession,
    *,
    status: str | None,
    merchant_id: str | None,
    cycle_id: str | None,
    limit: int,
    oldest_first: bool = False,
) -> list[dict[str, Any]]:
    order = SettlementStatement.id.asc() if oldest_first else SettlementStatement.id.desc()
    q = select(SettlementStatement).order_by(order).limit(limit)
    if status:
        q = q.where(SettlementStatement.status == status)
    if merchant_id:
        q = q.where(SettlementStatement.merchant_id == merchant_id)
    if cycle_id:
        q = q.where(SettlementStatement.cycle_id == cycle_id)
    return [statement_view(st) for st in (await session.execute(q)).scalars()]


async def statement(session: AsyncSession, statement_id: int) -> SettlementStatement | None:
    return await session.get(SettlementStatement, statement_id)


async def lines(session: AsyncSession, st: SettlementStatement) -> list[dict[str, Any]]:
    rows = (
        await session.execute(
            select(SettlementLine)
            .where(SettlementLine.cycle_id == st.cycle_id, SettlementLine.merchant_id == st.merchant_id)
            .order_by(SettlementLine.order_no)
        )
    ).scalars()
    return [
        {
            "order_no": ln.order_no,
            "gross_minor": ln.gross_minor,
            "refunded_minor": ln.refunded_minor,
            "subsidy_minor": ln.subsidy_minor,
            "commission_minor": ln.commission_minor,
            "promoter_id": ln.promoter_id,
            "promoter_minor": ln.promoter_minor,
            "net_minor": ln.net_minor,
            "rule_id": ln.rule_id,
        }
        for ln in rows
    ]


async def cycle(session: AsyncSession, cycle_id: str) -> dict[str, Any] | None:
    c = await session.get(SettlementCycle, cycle_id)
    if c is None:
        return None
    return {
        "cycle_id": c.id,
        "cutoff": c.cutoff,
        "status": c.status,
        "orders": c.orders,
        "statements": c.statements,
        "failure": c.failure,
        "triggered_by": c.triggered_by,
        "closed_at": c.closed_at,
    }
