"""Coupon reservation, release and consumption, run inside the order and payment activities' own
transaction (orders.create, orders.transition, payments.capture): not activities themselves, so no
flow changes its commands."""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from activities.refusals import carried
from db import ledger
from db.models import Campaign, Coupon, JournalEntry, Order, OrderItem, Refund
from db.promotions import applied_coupons
from domain import ledger as rules
from domain import promotions
from domain.orders import OrderInput
from domain.promotions import CouponStatus
from domain.refusals import Refusal, Refused


async def reserve(session: AsyncSession, order: OrderInput, items: list[OrderItem]) -> int:
    """Re-check the order's coupons under lock, hold their budget, store the allocation per item.

    Answers the platform subsidy. The discount must be the one the placement answer showed (the API
    route computed it a moment ago); if the budget or a coupon changed since, the order is refused.
    """
    req = order.request
    if not req.coupon_ids:
        return 0
    with carried():
        applied = await applied_coupons(session, req, lock=True)
        total = sum(a.discount_minor for a in applied)
        if total != req.discount_minor:
            raise Refused(
                Refusal.COUPON_NOT_APPLICABLE,
                f"the coupons now take {total} off, not the {req.discount_minor} quoted: place the order again",
            )
        for a in applied:
            # The database has the last word on the budget: never spent beyond it, even without the lock.
            held = await session.execute(
                update(Campaign)
                .where(Campaign.id == a.campaign_id, Campaign.spent_minor + a.discount_minor <= Campaign.budget_minor)
                .values(spent_minor=Campaign.spent_minor + a.discount_minor)
                .returning(Campaign.id)
            )
            if held.scalar_one_or_none() is None:
                raise Refused(Refusal.BUDGET_EXHAUSTED, f"campaign {a.campaign_id} has no budget left")
            await session.execute(
                update(Coupon)
                .where(Coupon.id == a.coupon_id)
                .values(
                    status=CouponStatus.RESERVED.value,
                    order_no=order.order_no,
                    discount_minor=a.discount_minor,
                    subsidy_minor=a.subsidy_minor,
                )
            )
    discounts = promotions.per_line(applied, len(items))
    subsidies = promotions.per_line(applied, len(items), subsidy=True)
    for item, d, s in zip(items, discounts, subsidies, strict=True):
        item.discount_minor, item.subsidy_minor = d, s
    return sum(subsidies)


async def release(session: AsyncSession, order_no: str) -> None:
    """The order was cancelled or expired unpaid: its reserved coupons are usable again, budget back."""
    held = (
        await session.execute(
            select(Coupon)
            .where(Coupon.order_no == order_no, Coupon.status == CouponStatus.RESERVED.value)
            .order_by(Coupon.campaign_id)
            .with_for_update()
        )
    ).scalars()
    for coupon in held:
        await session.execute(
            update(Campaign)
            .where(Campaign.id == coupon.campaign_id)
            .values(spent_minor=Campaign.spent_minor - coupon.discount_minor)
        )
        coupon.status = CouponStatus.RELEASED.value


async def consume(session: AsyncSession, order_no: str) -> None:
    """The order's payment was captured: its coupons are used for good, and the platform-funded part of
    the discount moves from marketing into escrow, so escrow holds the merchant's gross."""
    consumed = await session.execute(
        update(Coupon)
        .where(Coupon.order_no == order_no, Coupon.status == CouponStatus.RESERVED.value)
        .values(status=CouponStatus.CONSUMED.value)
        .returning(Coupon.id)
    )
    if not consumed.scalars().all():
        return  # no coupon, or consumed by an earlier capture (a second channel's money is a duplicate)
    order = await session.get(Order, order_no)
    assert order is not None
    if order.subsidy_minor > 0:
        posting = rules.promotion_subsidy(
            f"promotion-subsidy:{order_no}", order_no, order.currency, order.subsidy_minor
        )
        await ledger.post(session, posting)


async def reverse_on_refund(session: AsyncSession, order: Order, refund: Refund) -> None:
    """A refund before settlement takes back the matching share of the subsidy (escrow → marketing), so
    escrow keeps holding exactly the merchant's gross (after settlement the clawback takes it back from
    those it was paid to: refund_rules.settled_refund). The caller holds the order's row lock and has not
    yet added this refund to refunded_minor."""
    subsidy = await moved_subsidy(session, order)
    back = promotions.subsidy_reversal(
        subsidy,
        order.subsidy_reversed_minor,
        order.paid_minor,
        order.refunded_minor + refund.amount_minor,
        refund.subsidy_minor,
    )
    if back > 0:
        key = f"subsidy-reversed:{refund.refund_no}"
        posting = rules.promotion_subsidy_reversed(key, order.order_no, order.currency, back)
        await ledger.post(session, posting)
    await taken_back(session, order, refund, back)


async def taken_back(session: AsyncSession, order: Order, refund: Refund, subsidy_back: int) -> None:
    """Record on the order the subsidy a refund gave back to marketing (before or after settlement), and
    give the coupons back (budget too) once the order is fully refunded, if their campaign still runs.
    The caller holds the order's row lock and has not yet added this refund to refunded_minor."""
    order.subsidy_reversed_minor += subsidy_back
    if order.refunded_minor + refund.amount_minor >= order.paid_minor:
        await _restore(session, order.order_no)


async def moved_subsidy(session: AsyncSession, order: Order) -> int:
    """The order's subsidy that moved into escrow at capture (0: none did): what its refunds give back."""
    if order.subsidy_minor <= 0 or not await _subsidised(session, order.order_no):
        return 0
    return order.subsidy_minor


async def _subsidised(session: AsyncSession, order_no: str) -> bool:
    found = await session.execute(
        select(JournalEntry.id).where(
            JournalEntry.reference == order_no, JournalEntry.tx_code == rules.TxCode.PROMOTION_SUBSIDY.value
        )
    )
    return found.first() is not None


async def _restore(session: AsyncSession, order_no: str) -> None:
    now = datetime.now(UTC)
    used = (
        await session.execute(
            select(Coupon)
            .where(Coupon.order_no == order_no, Coupon.status == CouponStatus.CONSUMED.value)
            .order_by(Coupon.campaign_id)
            .with_for_update()
        )
    ).scalars()
    for coupon in used:
        campaign = await session.get(Campaign, coupon.campaign_id, with_for_update=True)
        assert campaign is not None
        if campaign.valid_to <= now:
            continue  # the campaign is over: the coupon stays used
        campaign.spent_minor -= coupon.discount_minor
        coupon.status = CouponStatus.RELEASED.value
