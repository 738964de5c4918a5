"""Reading orders for the API (the flows own every write)."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession

from db.models import Merchant, Order, OrderEvent, OrderItem, Payment, PaymentAttempt, SkuStock
from db.promotions import coupons_of
from db.refunds import refunds_of
from domain.admission import MerchantFacts


async def merchant(session: AsyncSession, merchant_id: str) -> Merchant | None:
    return await session.get(Merchant, merchant_id)


async def tracked_stock(session: AsyncSession, merchant_id: str, skus: list[str]) -> dict[str, int]:
    """What is left of the SKUs among `skus` whose stock the merchant tracks (advisory: the flow reserves)."""
    rows = await session.execute(
        select(SkuStock.sku_id, SkuStock.available).where(
            SkuStock.merchant_id == merchant_id, SkuStock.sku_id.in_(skus)
        )
    )
    return {sku: int(left) for sku, left in rows}


def merchant_facts(merchant: Merchant | None) -> MerchantFacts | None:
    return None if merchant is None else MerchantFacts(merchant.id, merchant.status, merchant.currency)


async def order_merchant(session: AsyncSession, order_no: str) -> str | None:
    # The whole row, kept in the session: order_view() right after finds it there without a query.
    order = await session.get(Order, order_no)
    return order.merchant_id if order is not None else None


async def merchant_of_order(db: AsyncConnection, order_no: str) -> str | None:
    """The order's merchant alone (a scope check before a flow is asked)."""
    return (await db.execute(select(Order.merchant_id).where(Order.order_no == order_no))).scalar_one_or_none()


async def order_view(session: AsyncSession, order_no: str) -> dict[str, Any] | None:
    order = await session.get(Order, order_no)
    if order is None:
        return None
    items = (
        await session.execute(select(OrderItem).where(OrderItem.order_no == order_no).order_by(OrderItem.id))
    ).scalars()
    events = (
        await session.execute(select(OrderEvent).where(OrderEvent.order_no == order_no).order_by(OrderEvent.id))
    ).scalars()
    payments = (await session.execute(select(Payment).where(Payment.order_no == order_no))).scalars().all()
    attempts = (
        (
            await session.execute(
                select(PaymentAttempt)
                .where(PaymentAttempt.payment_no.in_([p.payment_no for p in payments]))
                .order_by(PaymentAttempt.payment_no, PaymentAttempt.seq)
            )
        )
        .scalars()
        .all()
    )
    return {
        "order_no": order.order_no,
        "status": order.status,
        "customer_id": order.customer_id,
        "merchant_id": order.merchant_id,
        "currency": order.currency,
        "goods_minor": order.goods_minor,
        "delivery_fee_minor": order.delivery_fee_minor,
        "discount_minor": order.discount_minor,
        "subsidy_minor": order.subsidy_minor,
        "coupons": await coupons_of(session, order_no),
        "payable_minor": order.payable_minor,
        "paid_minor": order.paid_minor,
        "refunded_minor": order.refunded_minor,
        "refund_required_minor": order.refund_required_minor,
        "settleable": order.settleable,
        "settled": order.settled,
        "provider_id": order.provider_id,
        "cancel_reason": order.cancel_reason,
        "promoter_id": order.promoter_id,
        "commission": order.commission_snapshot,
        "created_at": order.created_at,
        "items": [
            {
                "sku_id": i.sku_id,
                "name": i.name,
                "category_id": i.category_id,
                "unit_price_minor": i.unit_price_minor,
                "quantity": i.quantity,
                "line_total_minor": i.line_total_minor,
                "discount_minor": i.discount_minor,
                "subsidy_minor": i.subsidy_minor,
            }
            for i in items
        ],
        "payments": [
            {
                "payment_no": p.payment_no,
                "status": p.status,
                "amount_minor": p.amount_minor,
                "channel": p.channel,
                "paid_at": p.paid_at,
                "paid_after_cancel": p.paid_after_cancel,
                "attempts": [
                    {"seq": a.seq, "channel": a.channel, "status": a.status, "pay_url": a.pay_url, "error": a.error}
                    for a in attempts
                    if a.payment_no == p.payment_no
                ],
            }
            for p in payments
        ],
        "refunds": await refunds_of(session, order_no),
        "timeline": [
            {
                "at": e.at,
                "event": e.event,
                "from": e.status_from,
                "to": e.status_to,
                "cause": e.cause,
                "details": e.details,
            }
            for e in events
        ],
    }
