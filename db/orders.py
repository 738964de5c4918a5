"""Reading orders for the API (the flows own every write)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import select, text
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession

from db import settlement_work
from db.models import Merchant, Order, SkuStock
from domain.admission import MerchantFacts


@dataclass(frozen=True)
class AdmissionFacts:
    merchant: MerchantFacts | None
    category: str | None
    tracked: dict[str, int]
    """What is left of the SKUs asked for whose stock the merchant tracks (advisory: the flow reserves)."""


async def admission_facts(session: AsyncSession, merchant_id: str, skus: list[str]) -> AdmissionFacts:
    """The merchant and its tracked stock of `skus` in one statement (placement reads them on every order)."""
    rows = (
        await session.execute(
            select(Merchant.id, Merchant.status, Merchant.currency, Merchant.category)
            .add_columns(SkuStock.sku_id, SkuStock.available)
            .outerjoin(SkuStock, (SkuStock.merchant_id == Merchant.id) & SkuStock.sku_id.in_(skus))
            .where(Merchant.id == merchant_id)
        )
    ).all()
    if not rows:
        return AdmissionFacts(None, None, {})
    m = rows[0]
    tracked = {r.sku_id: int(r.available) for r in rows if r.sku_id is not None}
    return AdmissionFacts(MerchantFacts(m.id, m.status, m.currency), m.category, tracked)


def merchant_facts(merchant: Merchant | None) -> MerchantFacts | None:
    return None if merchant is None else MerchantFacts(merchant.id, merchant.status, merchant.currency)


async def merchant_of_order(db: AsyncConnection, order_no: str) -> str | None:
    """The order's merchant alone (a scope check before a flow is asked)."""
    return (await db.execute(select(Order.merchant_id).where(Order.order_no == order_no))).scalar_one_or_none()


# Everything an order shows besides its own row, in one statement: a GET of an order is the API's most
# frequent request (apps poll it), and six queries of ORM objects cost it more than the reading itself.
# Timestamps come back as JSON strings; the API's response model reads them back as datetimes.
_ORDER_PARTS = text(
    """
    SELECT
      (SELECT coalesce(json_agg(json_build_object(
          'sku_id', i.sku_id, 'name', i.name, 'category_id', i.category_id,
          'unit_price_minor', i.unit_price_minor, 'quantity', i.quantity, 'line_total_minor', i.line_total_minor,
          'discount_minor', i.discount_minor, 'subsidy_minor', i.subsidy_minor) ORDER BY i.id), '[]')
       FROM order_items i WHERE i.order_no = :no) AS items,
      (SELECT coalesce(json_agg(json_build_object(
          'payment_no', p.payment_no, 'status', p.status, 'amount_minor', p.amount_minor, 'channel', p.channel,
          'paid_at', p.paid_at, 'paid_after_cancel', p.paid_after_cancel,
          'attempts', (SELECT coalesce(json_agg(json_build_object(
              'seq', a.seq, 'channel', a.channel, 'status', a.status, 'pay_url', a.pay_url, 'error', a.error)
              ORDER BY a.seq), '[]')
            FROM payment_attempts a WHERE a.payment_no = p.payment_no)) ORDER BY p.created_at, p.payment_no), '[]')
       FROM payments p WHERE p.order_no = :no) AS payments,
      (SELECT coalesce(json_agg(json_build_object(
          'coupon_id', c.id, 'campaign_id', c.campaign_id, 'status', c.status,
          'discount_minor', c.discount_minor, 'subsidy_minor', c.subsidy_minor) ORDER BY c.id), '[]')
       FROM coupons c WHERE c.order_no = :no) AS coupons,
      (SELECT coalesce(json_agg(json_build_object(
          'refund_no', r.refund_no, 'status', r.status, 'amount_minor', r.amount_minor,
          'channel', r.channel, 'origin', r.origin) ORDER BY r.created_at), '[]')
       FROM refunds r WHERE r.order_no = :no) AS refunds,
      (SELECT coalesce(json_agg(json_build_object(
          'at', e.at, 'event', e.event, 'from', e.status_from, 'to', e.status_to,
          'cause', e.cause, 'details', e.details) ORDER BY e.id), '[]')
       FROM order_timeline e WHERE e.order_no = :no) AS timeline
    """
)


async def order_view(session: AsyncSession, order_no: str) -> dict[str, Any] | None:
    order = await session.get(Order, order_no)
    if order is None:
        return None
    parts = (await session.execute(_ORDER_PARTS, {"no": order_no})).one()
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
        "coupons": parts.coupons,
        "payable_minor": order.payable_minor,
        "paid_minor": order.paid_minor,
        "refunded_minor": order.refunded_minor,
        "refund_required_minor": order.refund_required_minor,
        "settleable": order.settleable,
        "settled": (await settlement_work.settlement_of(session, order_no))[1],
        "provider_id": order.provider_id,
        "cancel_reason": order.cancel_reason,
        "promoter_id": order.promoter_id,
        "commission": order.commission_snapshot,
        "created_at": order.created_at,
        "items": parts.items,
        "payments": parts.payments,
        "refunds": parts.refunds,
        "timeline": parts.timeline,
    }
