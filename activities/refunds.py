"""Refund records: opening under a lock on the capture, attempts, escalation, completion with its posting.

One transaction each, idempotent on the refund number.
"""

from __future__ import annotations

from sqlalchemy import and_, func, select, update
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from temporalio import activity

from activities import promotions
from activities.orders import add_event
from activities.refusals import carried, refuse
from db import ledger, settlement_work
from db.audit import record_decision
from db.engine import unit_of_work
from db.models import Capture, Order, Refund, RefundAttempt, SettlementLine, SettlementStatement
from domain import accounts
from domain import ledger as rules
from domain.commission import Split
from domain.refund_rules import RefundFacts, SettledOrder, check_refund, merchant_sources, settled_refund
from domain.refunds import (
    HOLDING,
    OpenedRefund,
    RefundAttemptRecord,
    RefundCompletion,
    RefundEscalation,
    RefundInput,
    RefundStatus,
)
from domain.refusals import Refusal
from domain.settlement import StatementStatus

DONE = (RefundStatus.SUCCEEDED.value, RefundStatus.MANUAL_PAID.value)


async def _capture(session: AsyncSession, inp: RefundInput) -> Capture | None:
    q = select(Capture).where(Capture.payment_no == inp.payment_no)
    q = q.where(Capture.channel == inp.channel) if inp.channel else q.where(Capture.extra.is_(False))
    return (await session.execute(q.with_for_update())).scalar_one_or_none()


async def held_by_refunds(session: AsyncSession, capture_id: int) -> int:
    """Money of the capture that refunds hold (in flight or done): no longer refundable."""
    held = await session.execute(
        select(func.coalesce(func.sum(Refund.amount_minor), 0)).where(
            Refund.capture_id == capture_id, Refund.status.in_([s.value for s in HOLDING])
        )
    )
    return int(held.scalar_one())


async def _clawback(session: AsyncSession, refund: Refund, order: Order, paid_from: str | None) -> rules.Posting:
    """A settled order's refund comes back from those the settlement paid, in the shares it paid them
    (refund_rules.settled_refund: the customer's money and the refund's share of the promotion subsidy,
    which goes back to marketing, cumulative over the order's refunds after settlement so rounding never
    takes back more than was settled): the merchant's share from its available balance and, where that
    does not reach, from its clawback account (the merchant then owes the platform), the commission, and
    the promoter's share. The caller holds the order's row lock, so refunds completing together queue;
    this refund is not yet in the order's refunded_minor."""
    line = (
        await session.execute(
            select(SettlementLine)
            .join(
                SettlementStatement,
                and_(
                    SettlementStatement.cycle_id == SettlementLine.cycle_id,
                    SettlementStatement.merchant_id == SettlementLine.merchant_id,
                ),
            )
            .where(
                SettlementLine.order_no == order.order_no, SettlementStatement.status == StatementStatus.APPROVED.value
            )
        )
    ).scalar_one()
    subsidy = await promotions.moved_subsidy(session, order)
    settled = SettledOrder(
        settled=Split(
            base_minor=line.gross_minor - line.refunded_minor,
            commission_minor=line.commission_minor,
            promoter_minor=line.promoter_minor,
            merchant_net_minor=line.net_minor,
        ),
        settled_refunded_minor=line.refunded_minor,
        settled_subsidy_minor=line.subsidy_minor if subsidy else 0,
        paid_minor=order.paid_minor,
        refunded_minor=order.refunded_minor,
        subsidy_minor=subsidy,
        subsidy_reversed_minor=order.subsidy_reversed_minor,
    )
    taken = settled_refund(settled, refund.amount_minor, refund.subsidy_minor)
    await promotions.taken_back(session, order, refund, taken.subsidy_minor)
    available = await ledger.balance_of(
        session, accounts.merchant_account(order.merchant_id, "available"), refund.currency
    )
    from_available, from_clawback = merchant_sources(taken.part.merchant_net_minor, available)
    refund.from_available_minor = from_available  # committed with the posting (the caller's transaction)
    return rules.refund_after_settlement(
        f"refund:{refund.refund_no}",
        refund.refund_no,
        refund.currency,
        channel=refund.channel,
        merchant_id=order.merchant_id,
        from_available=from_available,
        from_clawback=from_clawback,
        commission_share=taken.part.commission_minor,
        promoter_id=line.promoter_id,
        promoter_share=taken.part.promoter_minor,
        paid_from=paid_from,
        subsidy=taken.subsidy_minor,
    )


class RefundActivities:
    def __init__(self, sessions: async_sessionmaker[AsyncSession]) -> None:
        self._sessions = sessions

    @activity.defn(name="refunds.open")
    async def open(self, inp: RefundInput) -> OpenedRefund:
        """Record the refund if the capture can still cover it. The capture row is locked, so concurrent
        requests queue here and together can never promise back more than was paid."""
        async with unit_of_work(self._sessions) as session:
            order = await session.get(Order, inp.order_no, with_for_update=True)
            if order is None:
                raise refuse(Refusal.ORDER_NOT_FOUND, f"order {inp.order_no} does not exist")
            capture = await _capture(session, inp)
            existing = await session.get(Refund, inp.refund_no)
            if existing is not None:
                return OpenedRefund(
                    status=RefundStatus(existing.status),
                    channel=existing.channel,
                    currency=existing.currency,
                    merchant_id=existing.merchant_id,
                )
            held = 0
            if capture is not None:
                held = await held_by_refunds(session, capture.id)
            # Out of the settlement queue while the refund is in flight (back when it ends, in `complete`):
            # taken under the queue row's lock, which a cycle's claim page holds until its lines commit.
            cycle, settled = await settlement_work.settlement_of(session, order.order_no, unqueue=True)
            facts = RefundFacts(
                order_no=order.order_no,
                order_status=order.status,
                after_sale_closed=order.settleable,
                settlement_cycle=cycle,
                settled=settled,
                captured_minor=None if capture is None else capture.amount_minor,
                currency=order.currency if capture is None else capture.currency,
                held_minor=held,
            )
            with carried():
                check_refund(facts, inp.amount_minor, inp.origin)
            assert capture is not None  # admitted: something was paid
            session.add(
                Refund(
                    refund_no=inp.refund_no,
                    order_no=inp.order_no,
                    payment_no=inp.payment_no,
                    capture_id=capture.id,
                    channel=capture.channel,
                    merchant_id=order.merchant_id,
                    amount_minor=inp.amount_minor,
                    subsidy_minor=inp.subsidy_minor,
                    currency=capture.currency,
                    reason=inp.reason,
                    origin=inp.origin.value,
                    status=RefundStatus.PROCESSING.value,
                    requested_by=inp.requested_by,
                    requested_by_key_id=inp.requested_by_key_id,
                )
            )
            await session.flush()
            await add_event(
                session,
                inp.order_no,
                f"refund-{inp.refund_no}",
                f"refund requested: {inp.reason}",
                details={"refund_no": inp.refund_no, "amount_minor": inp.amount_minor},
            )
            return OpenedRefund(
                status=RefundStatus.PROCESSING,
                channel=capture.channel,
                currency=capture.currency,
                merchant_id=order.merchant_id,
            )

    @activity.defn(name="refunds.record_attempt")
    async def record_attempt(self, a: RefundAttemptRecord) -> None:
        async with unit_of_work(self._sessions) as session:
            await session.execute(
                insert(RefundAttempt)
                .values(refund_no=a.refund_no, seq=a.seq, kind=a.kind, status=a.status, detail=a.detail)
                .on_conflict_do_nothing(index_elements=["refund_no", "seq"])
            )

    @activity.defn(name="refunds.escalate")
    async def escalate(self, e: RefundEscalation) -> None:
        """The channel cannot return the money: it now waits for finance to approve a manual transfer."""
        async with unit_of_work(self._sessions) as session:
            await session.execute(
                update(Refund)
                .where(Refund.refund_no == e.refund_no, Refund.status == RefundStatus.PROCESSING.value)
                .values(status=RefundStatus.MANUAL_PENDING.value, failure_reason=e.reason)
            )
            await session.execute(
                insert(RefundAttempt)
                .values(refund_no=e.refund_no, seq=e.seq, kind="manual", status="ESCALATED", detail=e.reason)
                .on_conflict_do_nothing(index_elements=["refund_no", "seq"])
            )

    @activity.defn(name="refunds.complete")
    async def complete(self, c: RefundCompletion) -> None:
        """Post the refund and record it on the refund and its order, all or nothing. A refund completes
        once, whichever way (channel or manual transfer) comes first: a second completion of any kind
        changes nothing and posts nothing (checked under the refund's row lock)."""
        async with unit_of_work(self._sessions) as session:
            refund = await session.get(Refund, c.refund_no, with_for_update=True)
            if refund is None:
                raise RuntimeError(f"refund {c.refund_no} was never opened")
            done = RefundStatus.MANUAL_PAID if c.manual else RefundStatus.SUCCEEDED
            if refund.status in DONE:
                return
            capture = await session.get(Capture, refund.capture_id)
            assert capture is not None
            # Locked: the clawback of a settled order depends on the refunds completed before this one.
            order = await session.get(Order, refund.order_no, with_for_update=True)
            assert order is not None
            bank = accounts.bank_payout(c.bank or "platform") if c.manual else None
            _, settled = await settlement_work.settlement_of(session, order.order_no)
            if settled and not capture.extra:
                # Settled money is no longer in escrow, whichever way it goes back to the customer.
                posting = await _clawback(session, refund, order, bank)
            elif c.manual:
                posting = rules.manual_refund_paid(
                    f"manual-refund:{c.refund_no}",
                    c.refund_no,
                    refund.currency,
                    refund.amount_minor,
                    c.bank or "platform",
                )
            else:
                posting = rules.refund_before_settlement(
                    f"refund:{c.refund_no}", c.refund_no, refund.currency, refund.amount_minor, refund.channel
                )
            if not settled and not capture.extra:  # after settlement: within _clawback
                await promotions.reverse_on_refund(session, order, refund)
            refund.ledger_entry_id = (await ledger.post(session, posting)).entry_id
            refund.status = done.value
            refund.approved_by = c.approved_by
            if c.manual and c.approved_by is not None:  # finance's approval: audited with its transfer
                await record_decision(
                    session,
                    person=c.approved_by,
                    key_id=c.approved_by_key_id,
                    role="finance",
                    action="refund.manual_transfer_approved",
                    subject_type="refund",
                    subject_id=c.refund_no,
                    note=c.note,
                )
            if not capture.extra:  # money that was the order's comes off what the order kept
                await session.execute(
                    update(Order)
                    .where(Order.order_no == refund.order_no)
                    .values(refunded_minor=Order.refunded_minor + refund.amount_minor)
                )
            await session.flush()  # ended: it keeps the order out of settlement no longer
            await settlement_work.queue_order(session, refund.order_no)
            await add_event(
                session,
                refund.order_no,
                f"refund-{c.refund_no}-{done.value.lower()}",
                f"refunded {refund.amount_minor} {refund.currency}"
                + (f" by manual transfer approved by {c.approved_by}" if c.manual else f" via {refund.channel}"),
                details={"refund_no": c.refund_no, "amount_minor": refund.amount_minor},
            )
