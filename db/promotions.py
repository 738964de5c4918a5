"""Campaign and coupon reads, and the facts the promotion rules need (domain/promotions.py)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from db.models import Campaign, Coupon
from domain import promotions
from domain.orders import CreateOrderRequest
from domain.promotions import Applied, CampaignTerms, CouponFacts, CouponStatus, Line
from domain.refusals import Refusal, Refused

HOLDING = (CouponStatus.RESERVED.value, CouponStatus.CONSUMED.value)


def campaign_view(row: Campaign) -> dict[str, Any]:
    return {
        **row.terms,
        "id": row.id,
        "budget_minor": row.budget_minor,
        "spent_minor": row.spent_minor,
        "remaining_minor": row.budget_minor - row.spent_minor,
        "created_by": row.created_by,
        "created_at": row.created_at,
    }


async def coupon_facts(
    session: AsyncSession, coupon_ids: list[str], customer_id: str, *, lock: bool = False
) -> list[CouponFacts]:
    """The named coupons with their campaigns, in the order named; locked (campaigns first, in id order,
    then coupons) when the caller is about to reserve, so concurrent orders serialise per campaign."""
    coupons = {c.id: c for c in (await session.execute(select(Coupon).where(Coupon.id.in_(coupon_ids)))).scalars()}
    for cid in coupon_ids:
        if cid not in coupons:
            raise Refused(Refusal.COUPON_NOT_FOUND, f"coupon {cid} does not exist")
    campaign_ids = sorted({c.campaign_id for c in coupons.values()})
    query = select(Campaign).where(Campaign.id.in_(campaign_ids)).order_by(Campaign.id)
    campaigns = {c.id: c for c in (await session.execute(query.with_for_update() if lock else query)).scalars()}
    if lock:
        await session.execute(select(Coupon.id).where(Coupon.id.in_(coupon_ids)).order_by(Coupon.id).with_for_update())
        for c in coupons.values():
            await session.refresh(c)
    used = dict(
        (
            await session.execute(
                select(Coupon.campaign_id, func.count())
                .where(
                    Coupon.campaign_id.in_(campaign_ids),
                    Coupon.customer_id == customer_id,
                    Coupon.status.in_(HOLDING),
                    Coupon.id.not_in(coupon_ids),
                )
                .group_by(Coupon.campaign_id)
            )
        ).all()
    )
    out = []
    for cid in coupon_ids:
        c = coupons[cid]
        k = campaigns[c.campaign_id]
        out.append(
            CouponFacts(
                coupon_id=c.id,
                campaign_id=k.id,
                customer_id=c.customer_id,
                status=CouponStatus(c.status),
                terms=CampaignTerms.model_validate(k.terms),
                spent_minor=k.spent_minor,
                used_by_customer=int(used.get(k.id, 0)),
            )
        )
    return out


def lines_of(items: list[Any]) -> list[Line]:
    """Order items (request items or rows) as the promotion rules see them."""
    return [Line(i.sku_id, i.category_id, i.unit_price_minor * i.quantity) for i in items]


async def applied_coupons(session: AsyncSession, req: CreateOrderRequest, *, lock: bool = False) -> list[Applied]:
    """The order's coupons applied to its items now (domain.promotions.apply over the stored facts); with
    `lock`, the campaigns and coupons are locked for a reservation."""
    facts = await coupon_facts(session, req.coupon_ids, req.customer_id, lock=lock)
    return promotions.apply(
        facts,
        customer_id=req.customer_id,
        merchant_id=req.merchant_id,
        lines=lines_of(req.items),
        now=datetime.now(UTC),
    )
