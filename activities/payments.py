"""Payment records: attempts, capture (with its ledger posting) and the final status. One transaction each."""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import update
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from temporalio import activity

from activities import promotions
from db import ledger, payment_writes
from db.engine import unit_of_work
from db.models import Payment, PaymentAttempt
from domain import ledger as rules
from domain.payments import AttemptRecord, AttemptStatus, Captured, CaptureRequest, PaymentOutcome, PaymentStatus


async def _open(
    session: AsyncSession, payment_no: str, order_no: str, merchant_id: str, amount: int, currency: str
) -> None:
    await session.execute(
        insert(Payment)
        .values(
            payment_no=payment_no,
            order_no=order_no,
            merchant_id=merchant_id,
            amount_minor=amount,
            currency=currency,
            status=PaymentStatus.PENDING.value,
            paid_after_cancel=False,
        )
        .on_conflict_do_nothing(index_elements=["payment_no"])
    )


class PaymentActivities:
    def __init__(self, sessions: async_sessionmaker[AsyncSession]) -> None:
        self._sessions = sessions

    @activity.defn(name="payments.record_attempt")
    async def record_attempt(self, a: AttemptRecord) -> None:
        async with unit_of_work(self._sessions) as session:
            await _open(session, a.payment_no, a.order_no, a.merchant_id, a.amount_minor, a.currency)
            await session.execute(
                insert(PaymentAttempt)
                .values(
                    payment_no=a.payment_no,
                    seq=a.seq,
                    channel=a.channel,
                    status=a.status.value,
                    channel_order_id=a.channel_order_id,
                    pay_url=a.pay_url,
                    error=a.error,
                )
                .on_conflict_do_nothing(index_elements=["payment_no", "seq"])
            )

    @activity.defn(name="payments.capture")
    async def capture(self, c: CaptureRequest) -> Captured:
        """Mark the payment paid and post PAYMENT_CAPTURED (DEPOSIT_PAID for a security deposit), once per
        (payment, channel): money that arrived through a second channel is captured too, so the ledger
        shows it and it can be returned."""
        async with unit_of_work(self._sessions) as session:
            payment = await payment_writes.lock_payment(session, c.payment_no)
            if payment is None:
                raise RuntimeError(f"payment {c.payment_no} has no record yet")  # retried: a bug, not a refusal
            first = payment.status != PaymentStatus.SUCCEEDED.value or payment.channel == c.channel
            if c.purpose == "deposit" and c.merchant_id:
                # A security deposit is the merchant's money held by the platform, not an order in escrow.
                posting = rules.deposit_paid(
                    f"deposit-paid:{c.payment_no}:{c.channel}",
                    c.payment_no,
                    c.currency,
                    c.amount_minor,
                    c.channel,
                    c.merchant_id,
                )
            else:
                posting = rules.payment_captured(
                    f"payment-captured:{c.payment_no}:{c.channel}", c.payment_no, c.currency, c.amount_minor, c.channel
                )
            posted = await ledger.post(session, posting)
            await payment_writes.record_capture(
                session,
                payment_no=c.payment_no,
                order_no=c.order_no,
                channel=c.channel,
                channel_txn_id=c.channel_txn_id,
                amount_minor=c.amount_minor,
                currency=c.currency,
                after_cancel=c.after_cancel,
                extra=not first,
                entry_id=posted.entry_id,
                paid_at=datetime.now(UTC),
                succeeded=PaymentStatus.SUCCEEDED.value,
                attempt_paid=AttemptStatus.PAID.value,
            )
            if c.purpose != "deposit":
                await promotions.consume(session, c.order_no)
            return Captured(entry_id=posted.entry_id, first=first)

    @activity.defn(name="payments.finish")
    async def finish(self, outcome: PaymentOutcome) -> None:
        """Record CLOSED or FAILED; a payment that succeeded keeps its status."""
        async with unit_of_work(self._sessions) as session:
            await session.execute(
                update(Payment)
                .where(Payment.payment_no == outcome.payment_no, Payment.status == PaymentStatus.PENDING.value)
                .values(status=outcome.status.value)
            )
            if outcome.status is PaymentStatus.CLOSED:
                await session.execute(
                    update(PaymentAttempt)
                    .where(
                        PaymentAttempt.payment_no == outcome.payment_no,
                        PaymentAttempt.status == AttemptStatus.CREATED.value,
                    )
                    .values(status=AttemptStatus.CLOSED.value)
                )
