"""Order records: creation with stock reservation, status transitions with the timeline, dispatch.

Each method is one transaction and idempotent: retried after a crash it finds its own earlier write
(order_no primary key, unique timeline event names) and changes nothing.
"""

from __future__ import annotations

from sqlalchemy import func, select, update
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from temporalio import activity

from activities import promotions
from activities.refusals import carried, refuse
from db import order_writes, settlement_work
from db.engine import unit_of_work
from db.models import Order, OrderEvent, OrderItem, SkuStock, StockReservation
from domain.admission import MerchantFacts, admit_merchant, admit_stock
from domain.orders import (
    DispatchRequest,
    OrderInput,
    OrderStatus,
    ReservationStatus,
    Transition,
    can_move,
    frees_provider,
)
from domain.refusals import Refusal


async def add_event(
    session: AsyncSession,
    order_no: str,
    event: str,
    cause: str,
    *,
    status_from: str | None = None,
    status_to: str | None = None,
    details: dict[str, str | int] | None = None,
) -> bool:
    """Append to the timeline; False if this event was recorded before (a retry)."""
    inserted = await session.execute(
        insert(OrderEvent)
        .values(
            order_no=order_no,
            event=event,
            cause=cause,
            status_from=status_from,
            status_to=status_to,
            details=details or {},
        )
        .on_conflict_do_nothing(index_elements=["order_no", "event"])
        .returning(OrderEvent.id)
    )
    return inserted.scalar_one_or_none() is not None


class OrderActivities:
    def __init__(self, sessions: async_sessionmaker[AsyncSession]) -> None:
        self._sessions = sessions

    @activity.defn(name="orders.create")
    async def create(self, order: OrderInput) -> None:
        req = order.request
        async with unit_of_work(self._sessions) as session:
            merchant = await order_writes.merchant_for_order(session, req.merchant_id)
            with carried():
                facts = None if merchant is None else MerchantFacts(req.merchant_id, merchant.status, merchant.currency)
                admit_merchant(req.merchant_id, facts, req.currency)
            # The order's row, its `created` event and its stock reservations (db/order_writes.py).
            created = await order_writes.create_order(
                session,
                row={
                    "order_no": order.order_no,
                    "customer_id": req.customer_id,
                    "merchant_id": req.merchant_id,
                    "currency": req.currency,
                    "goods_minor": req.goods_minor,
                    "delivery_fee_minor": req.delivery_fee_minor,
                    "discount_minor": req.discount_minor,
                    "payable_minor": req.payable_minor,
                    "payment_no": order.payment_no,
                    "preferred_channel": req.channel,
                    "promoter_id": req.promoter_id,
                    "promoter_bps": order.commission.promoter_bps,
                    "campaign_id": req.campaign_id,
                    "commission_rule_id": order.commission.rule_id,
                    "commission_bps": order.commission.rate_bps,
                    "commission_snapshot": order.commission.model_dump(),
                },
                status=OrderStatus.AWAITING_PAYMENT.value,
                reserved=ReservationStatus.RESERVED.value,
                quantities={i.sku_id: i.quantity for i in sorted(req.items, key=lambda i: i.sku_id)},
            )
            if not created.created:
                return  # created by an earlier try of this activity
            with carried():
                admit_stock({i.sku_id: i.quantity for i in req.items}, created.short)
            items = [
                OrderItem(
                    order_no=order.order_no,
                    sku_id=i.sku_id,
                    name=i.name,
                    category_id=i.category_id,
                    unit_price_minor=i.unit_price_minor,
                    quantity=i.quantity,
                    line_total_minor=i.line_total_minor,
                )
                for i in req.items
            ]
            subsidy = await promotions.reserve(session, order, items)
            session.add_all(items)
            if subsidy:
                await session.execute(
                    update(Order).where(Order.order_no == order.order_no).values(subsidy_minor=subsidy)
                )

    @activity.defn(name="orders.transition")
    async def transition(self, t: Transition) -> None:
        # Every step of every order passes here: one statement locks the row, judges the move by the
        # statuses domain/orders.py allows it from, and writes the event, the columns and the provider.
        async with unit_of_work(self._sessions) as session:
            moved = await order_writes.transition(
                session,
                order_no=t.order_no,
                event=t.event,
                cause=t.cause,
                to=t.to.value if t.to is not None else None,
                legal_from=[s.value for s in OrderStatus if t.to is not None and (s is t.to or can_move(s, t.to))],
                frees_provider=t.to is not None and frees_provider(t.to),
                details=t.details,
                paid_minor=t.paid_minor,
                cancel_reason=t.cancel_reason,
                refund_required_minor=t.refund_required_minor,
            )
            if moved.status is None:
                raise refuse(Refusal.ORDER_NOT_FOUND, f"order {t.order_no} does not exist")
            current = OrderStatus(moved.status)
            if t.to is not None and current is not t.to and not can_move(current, t.to):
                raise refuse(Refusal.ILLEGAL_TRANSITION, f"order {t.order_no} cannot move from {current} to {t.to}")
            if moved.recorded and t.to is OrderStatus.CANCELLED:
                await self._release(session, t.order_no)
                await promotions.release(session, t.order_no)

    async def _release(self, session: AsyncSession, order_no: str) -> None:
        held = (
            await session.execute(
                select(StockReservation)
                .where(
                    StockReservation.order_no == order_no,
                    StockReservation.status == ReservationStatus.RESERVED.value,
                )
                .order_by(StockReservation.sku_id)
            )
        ).scalars()
        for reservation in held:
            await session.execute(
                update(SkuStock)
                .where(SkuStock.sku_id == reservation.sku_id)
                .values(available=SkuStock.available + reservation.quantity)
            )
            reservation.status = ReservationStatus.RELEASED.value

    @activity.defn(name="orders.dispatch")
    async def dispatch(self, req: DispatchRequest) -> str | None:
        """Offer the order to a free provider who serves it (db/order_writes.py `dispatch`), never one that
        already declined it."""
        async with unit_of_work(self._sessions) as session:
            offered = await order_writes.dispatch(
                session, order_no=req.order_no, attempt=req.attempt, exclude=req.exclude
            )
            if not offered.found:
                raise RuntimeError(f"order {req.order_no} has no record")  # retried: a bug, not a refusal
            return offered.provider_id

    @activity.defn(name="orders.mark_settleable")
    async def mark_settleable(self, order_no: str) -> None:
        async with unit_of_work(self._sessions) as session:
            if await add_event(session, order_no, "settleable", "after-sale window closed"):
                # Into the settlement queue in the same transaction, unless a refund of it is in flight
                # (then the refund's end queues it): the update holds the order's row lock, which refunds
                # take too, so the queue sees every refund committed before.
                await session.execute(
                    update(Order).where(Order.order_no == order_no).values(settleable=True, settleable_at=func.now())
                )
                await settlement_work.queue_order(session, order_no)
