"""PaymentWorkflow (`payment-{payment_no}`, child of an order): route and open a channel order (unless
the order opened it and passed it in), wait, capture or close.

The customer pays at the channel; we learn of it by the signed callback or, if that is lost, by
polling the channel's query API on a doubling schedule. At the deadline (or when the order is
cancelled) every channel order we opened is closed; a close the channel refuses because the
customer paid in the last moment means the payment succeeded after all.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from temporalio import workflow
from temporalio.exceptions import ActivityError

with workflow.unsafe.imports_passed_through():
    from activities.channels import ChannelActivities
    from activities.payments import PaymentActivities
    from domain.payments import (
        CaptureRequest,
        ChannelNotification,
        ChannelOrderView,
        OpenedPayment,
        PaymentEvent,
        PaymentEventKind,
        PaymentInput,
        PaymentResult,
        PaymentStatus,
        poll_delay,
    )
    from workflows import policies, stages
    from workflows.awaiting import PartyWait, Woke
    from workflows.calls import db_step
    from workflows.payment_orders import ChannelOrders, open_channel_order, record_outcome

ORDER_PAYMENT_SIGNAL = "payment_event"
# Opening the channel order, recording it, capturing and finishing run as local activities (in the
# flow's task, recorded as markers): the order hears the pay URL after one workflow task instead of
# three. Polls and closes stay activities (they may retry for minutes). Older histories replay with
# activity tasks.
LOCAL_STEPS = "payment-local-steps"


@workflow.defn(name="PaymentWorkflow")
class PaymentWorkflow(ChannelOrders):
    def __init__(self) -> None:
        self._inbox: list[ChannelNotification] = []
        self._close_requested = False
        self._polls = 0
        self._attempts = 0
        self._local = False

    @workflow.signal(name="notification")
    def notification(self, payload: dict[str, object]) -> None:
        """A verified channel callback (the API checked its signature and stored it first)."""
        try:
            self._inbox.append(ChannelNotification.model_validate(payload))
        except ValueError:
            workflow.logger.warning("ignoring a notification that is not a payment notification: %s", payload)

    @workflow.signal(name="close")
    def close(self) -> None:
        """The order was cancelled: stop waiting and close the channel order."""
        self._close_requested = True

    @workflow.run
    async def run(self, inp: PaymentInput) -> PaymentResult:
        self._inp = inp
        self._local = inp.reports_by_result or workflow.patched(LOCAL_STEPS)
        if inp.opened is not None:
            # The order opened the channel order in its own first task and answered the placement with it.
            waiting = ("AWAITING_PAYMENT", self._waiting(inp.opened.view.channel, inp.opened.deadline))
            self._identify(entering=waiting)
        opened = inp.opened or await self._open()
        if opened is None:
            return self._result(PaymentStatus.FAILED, None)
        self._attempts, tried, deadline = opened.attempts, opened.tried, opened.deadline
        paid = await self._await_payment(opened.view.channel, deadline, entered=inp.opened is not None)
        if paid is not None:
            extras = [ch for ch in tried if ch != paid.channel]
            await self._capture(paid, after_cancel=False, tell_order=self._signals_success(extras))
            stages.enter("SUCCEEDED", f"paid through {paid.channel}")
            await self._return_extras(extras)
            return self._result(PaymentStatus.SUCCEEDED, paid.channel)

        # The deadline, or the order was cancelled: close what we opened.
        if not self._close_requested:
            try:
                paid = await self._close_all(tried, give_up_after=timedelta(seconds=inp.poll_max_seconds * 5))
            except ActivityError:
                stages.say(f"deadline passed and the channel does not confirm the close of {inp.payment_no}")
            else:
                if paid is not None:  # the customer paid in the last moment: the payment succeeded after all
                    extras = [ch for ch in tried if ch != paid.channel]
                    await self._capture(paid, after_cancel=False, tell_order=self._signals_success(extras))
                    stages.enter("SUCCEEDED", f"paid through {paid.channel} at the deadline")
                    await self._return_extras(extras)
                    return self._result(PaymentStatus.SUCCEEDED, paid.channel)
                await self._tell_order(
                    PaymentEvent(
                        kind=PaymentEventKind.EXPIRED, payment_no=inp.payment_no, reason="payment deadline passed"
                    )
                )
                return await self._closed()
            # The order must not wait on a channel outage: it is cancelled now and we keep closing.
            await self._tell_order(
                PaymentEvent(kind=PaymentEventKind.EXPIRED, payment_no=inp.payment_no, reason="payment deadline passed")
            )
        stages.enter("CLOSING", f"closing channel orders of {inp.payment_no} on {', '.join(tried)}")
        paid = await self._close_all(tried, give_up_after=None)
        if paid is None:
            return await self._closed()
        await self._capture(paid, after_cancel=True)
        stages.enter(
            "PAID_AFTER_CANCEL",
            f"{inp.payment_no} was paid through {paid.channel} after order "
            f"{inp.order_no} was cancelled: {inp.amount_minor} {inp.currency} must be refunded",
        )
        return self._result(PaymentStatus.SUCCEEDED, paid.channel, paid_after_cancel=True)

    # --- steps ----------------------------------------------------------------------------------
    def _identify(self, *, entering: tuple[str, str] | None) -> None:
        inp = self._inp
        stages.identify(
            "payment",
            order_no=inp.order_no,
            merchant_id=inp.merchant_id,
            amount_minor=inp.amount_minor,
            entering=entering,
        )

    async def _open(self) -> OpenedPayment | None:
        """Open a channel order and tell the order where to pay; None when no channel could (the order
        has been told that too)."""
        inp = self._inp
        # Newer flows enter their first stage in the identifying upsert itself.
        creating = ("CREATING", f"opening a channel order for {inp.payment_no}")
        self._identify(entering=creating if self._local else None)
        if not self._local:
            stages.enter(*creating)
        deadline = workflow.now() + timedelta(seconds=inp.timeout_seconds)
        routed = await open_channel_order(inp, deadline=deadline, local=self._local)
        self._attempts = routed.attempts
        if routed.opened is None:
            await self._finish(PaymentStatus.FAILED, routed.failure)
            await self._tell_order(
                PaymentEvent(kind=PaymentEventKind.FAILED, payment_no=inp.payment_no, reason=routed.failure)
            )
            stages.enter("FAILED", routed.failure)
            return None
        await self._tell_order(
            PaymentEvent(
                kind=PaymentEventKind.READY,
                payment_no=inp.payment_no,
                channel=routed.opened.view.channel,
                pay_url=routed.opened.view.pay_url,
                expires_at=deadline,
            )
        )
        return routed.opened

    async def _await_payment(self, channel: str, deadline: datetime, *, entered: bool) -> ChannelOrderView | None:
        inp = self._inp
        if not entered:
            stages.enter("AWAITING_PAYMENT", self._waiting(channel, deadline))
        waiting = PartyWait(
            lambda: bool(self._inbox) or self._close_requested,
            lambda polls: poll_delay(inp.poll_initial_seconds, inp.poll_max_seconds, polls),
            deadline=deadline,
            ask_at_deadline=False,
        )
        while not self._close_requested:
            if (paid := self._paid_from_inbox()) is not None:
                return paid
            if waiting.over():
                return None
            stages.say(self._waiting(channel, deadline))
            woke = await waiting.next()
            self._polls = waiting.polls
            if woke is Woke.HEARD:
                continue
            if woke is Woke.OVER:
                return None
            try:
                view = await workflow.execute_activity_method(
                    ChannelActivities.query_order,
                    args=[channel, inp.payment_no],
                    start_to_close_timeout=policies.CHANNEL_TIMEOUT,
                    retry_policy=policies.CHANNEL_QUERY,
                )
            except ActivityError:
                continue  # the channel is having a bad moment; the next poll or the callback will tell
            if view.status == "SUCCESS" and self._matches(view.amount_minor, view.currency):
                return view
        return self._paid_from_inbox()

    def _waiting(self, channel: str, deadline: datetime) -> str:
        return (
            f"waiting for payment {self._inp.payment_no} on {channel}, deadline {deadline:%H:%M:%S} UTC, "
            f"{self._polls} polls so far"
        )

    def _paid_from_inbox(self) -> ChannelOrderView | None:
        while self._inbox:
            n = self._inbox.pop(0)
            if (
                n.event_type == "payment.succeeded"
                and n.out_trade_no == self._inp.payment_no
                and self._matches(n.amount_minor, n.currency)
            ):
                return ChannelOrderView(
                    channel=n.party,
                    status="SUCCESS",
                    channel_txn_id=n.channel_txn_id,
                    amount_minor=n.amount_minor,
                    currency=n.currency,
                )
            workflow.logger.warning("notification %s does not confirm payment %s", n.event_id, self._inp.payment_no)
        return None

    def _matches(self, amount_minor: int, currency: str) -> bool:
        return amount_minor == self._inp.amount_minor and currency == self._inp.currency

    async def _closed(self) -> PaymentResult:
        await self._finish(PaymentStatus.CLOSED, "closed unpaid")
        stages.enter("CLOSED", f"{self._inp.payment_no} closed unpaid")
        return self._result(PaymentStatus.CLOSED, None)

    async def _capture(self, paid: ChannelOrderView, *, after_cancel: bool, tell_order: bool = True) -> None:
        inp = self._inp
        await db_step(
            PaymentActivities.capture,
            CaptureRequest(
                payment_no=inp.payment_no,
                order_no=inp.order_no,
                channel=paid.channel,
                channel_txn_id=paid.channel_txn_id,
                amount_minor=inp.amount_minor,
                currency=inp.currency,
                after_cancel=after_cancel,
                purpose=inp.purpose,
                merchant_id=inp.merchant_id,
            ),
            local=self._local,
        )
        if tell_order:
            await self._tell_order(
                PaymentEvent(
                    kind=PaymentEventKind.SUCCEEDED,
                    payment_no=inp.payment_no,
                    channel=paid.channel,
                    amount_minor=inp.amount_minor,
                )
            )

    async def _finish(self, status: PaymentStatus, reason: str) -> None:
        await record_outcome(self._inp.payment_no, status, reason, local=self._local)

    def _signals_success(self, extras: list[str]) -> bool:
        """Whether the parent hears of the success by a signal. An order that asked for it
        (`reports_by_result`) hears it from the result, which follows at once unless other channel
        orders must be closed (and a duplicate payment maybe refunded) first: then the signal, so the
        order does not wait for that."""
        return not self._inp.reports_by_result or bool(extras)

    async def _tell_order(self, event: PaymentEvent) -> None:
        await workflow.get_external_workflow_handle(self._inp.parent_workflow_id).signal(ORDER_PAYMENT_SIGNAL, event)

    def _result(self, status: PaymentStatus, channel: str | None, *, paid_after_cancel: bool = False) -> PaymentResult:
        return PaymentResult(
            payment_no=self._inp.payment_no,
            status=status,
            channel=channel,
            paid_after_cancel=paid_after_cancel,
            attempts=self._attempts,
            polls=self._polls,
        )
