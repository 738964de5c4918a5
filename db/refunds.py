"""Reading refunds for the API (the refund flow owns every write)."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from db.models import Order, OrderItem, Refund, RefundAttempt


async def payment_of(session: AsyncSession, order_no: str) -> tuple[str, str] | None:
    """(payment_no, merchant_id) of an order."""
    row = (await session.execute(select(Order.payment_no, Order.merchant_id).where(Order.order_no == order_no))).first()
    return (row[0], row[1]) if row else None


async def order_item(session: AsyncSession, order_no: str, sku_id: str) -> OrderItem | None:
    query = select(OrderItem).where(OrderItem.order_no == order_no, OrderItem.sku_id == sku_id)
    return (await session.execute(query)).scalar_one_or_none()


async def refund_view(session: AsyncSession, refund_no: str) -> dict[str, Any] | None:
    refund = await session.get(Refund, refund_no)
    if refund is None:
        return None
    attempts = (
        await session.execute(
            select(RefundAttempt).where(RefundAttempt.refund_no == refund_no).order_by(RefundAttempt.seq)
        )
    ).scalars()
    return {
        "refund_no": refund.refund_no,
        "order_no": refund.order_no,
        "payment_no": refund.payment_no,
        "merchant_id": refund.merchant_id,
        "status": refund.status,
        "amount_minor": refund.amount_minor,
        "currency": refund.currency,
        "channel": refund.channel,
        "reason": refund.reason,
        "origin": refund.origin,
        "requested_by": refund.requested_by,
        "failure_reason": refund.failure_reason,
        "approved_by": refund.approved_by,
        "created_at": refund.created_at,
        "attempts": [
            {"seq": a.seq, "kind": a.kind, "status": a.status, "detail": a.detail, "at": a.at} for a in attempts
        ],
    }
