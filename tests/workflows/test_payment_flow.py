"""PaymentWorkflow on its own: the callback or a poll tells of the payment (a wrong amount is not a
payment), fail-over when a channel will not open an order, the deadline closing it, a close refused
because the customer just paid, and a payment that lands after the order was cancelled."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from temporalio import activity, workflow
from temporalio.client import Client, WorkflowHandle
from temporalio.exceptions import ApplicationError

from domain.payments import (
    AttemptRecord,
    AttemptStatus,
    Captured,
    CaptureRequest,
    ChannelOrderRequest,
    ChannelOrderView,
    OpenedPayment,
    PaymentInput,
    PaymentOutcome,
    PaymentResult,
    PaymentStatus,
)
from domain.refunds import RefundInput, RefundOrigin, RefundResult, RefundStatus, RefundTerms
from domain.refusals import Refusal
from tests.workflows.conftest import Calls, Flow, answered, at_stage, eventually, heard
from workflows.payment import ORDER_PAYMENT_SIGNAL, PaymentWorkflow

AMOUNT = 8_800


@workflow.defn(name="RefundWorkflow", sandboxed=False)
class DuplicateRefund:
    """Stands in for the refund child of a duplicate payment: done at once, answering what it was asked."""

    @workflow.run
    async def run(self, inp: RefundInput) -> RefundResult:
        asked = f"{inp.channel} {inp.amount_minor} {inp.origin.value}"
        return RefundResult(refund_no=inp.refund_no, status=RefundStatus.SUCCEEDED, failure_reason=asked)


@dataclass
class Channels(Calls):
    """The channels as the doubles tell it: which refuse to open an order, what polls and closes answer."""

    refuse_create: set[str] = field(default_factory=set)
    queries: list[ChannelOrderView] = field(default_factory=list)  # in order; the last one repeats
    close: str = "CLOSED"  # what closing answers: CLOSED, or SUCCESS when the customer paid first
    paid_too: set[str] = field(default_factory=set)  # channels where closing finds the customer paid as well

    def doubles(self) -> list[Any]:
        @activity.defn(name="channel.create_order")
        async def create_order(req: ChannelOrderRequest) -> ChannelOrderView:
            self.add("channel.create_order", req)
            if req.channel in self.refuse_create:
                raise ApplicationError(
                    f"{req.channel} refused", type=Refusal.CHANNEL_REJECTED.value, non_retryable=True
                )
            return ChannelOrderView(
                channel=req.channel,
                status="NOTPAY",
                pay_url=f"https://{req.channel}.invalid/pay",
                channel_order_id="CO1",
            )

        @activity.defn(name="channel.query_order")
        async def query_order(channel: str, payment_no: str) -> ChannelOrderView:
            self.add("channel.query_order", channel)
            answer = self.queries.pop(0) if len(self.queries) > 1 else (self.queries or [view(channel, "NOTPAY")])[0]
            return answer

        @activity.defn(name="channel.close_order")
        async def close_order(channel: str, payment_no: str) -> ChannelOrderView:
            self.add("channel.close_order", channel)
            return view(channel, "SUCCESS" if channel in self.paid_too else self.close)

        @activity.defn(name="payments.record_attempt")
        async def record_attempt(a: AttemptRecord) -> None:
            self.add("payments.record_attempt", a)

        @activity.defn(name="payments.capture")
        async def capture(c: CaptureRequest) -> Captured:
            self.add("payments.capture", c)
            return Captured(entry_id=1, first=True)

        @activity.defn(name="payments.finish")
        async def finish(o: PaymentOutcome) -> None:
            self.add("payments.finish", o)

        return [create_order, query_order, close_order, record_attempt, capture, finish]

    def attempts(self) -> list[tuple[str, AttemptStatus]]:
        return [(a.channel, a.status) for a in self.of("payments.record_attempt")]


def view(channel: str, status: str, amount_minor: int = AMOUNT) -> ChannelOrderView:
    return ChannelOrderView(
        channel=channel, status=status, channel_txn_id="TXN1", amount_minor=amount_minor, currency="CNY"
    )


def payment(
    flow: Flow,
    *,
    timeout: int = 60,
    poll: int = 60,
    weights: dict[str, int] | None = None,
    reports_by_result: bool = False,
) -> PaymentInput:
    payment_no = flow.workflow_id("PAY")
    return PaymentInput(
        payment_no=payment_no,
        order_no=f"ORD-{payment_no}",
        merchant_id="m-1",
        amount_minor=AMOUNT,
        currency="CNY",
        description="cleaning",
        preferred_channel="wechat",
        channel_weights=weights or {"wechat": 1},
        timeout_seconds=timeout,
        poll_initial_seconds=poll,
        poll_max_seconds=poll,
        notify_url="http://callbacks.invalid/v1/callbacks",
        parent_workflow_id=f"order-{payment_no}",
        refund_terms=RefundTerms(
            poll_initial_seconds=1,
            poll_max_seconds=1,
            approval_remind_seconds=1,
            notify_url="http://callbacks.invalid",
            manual_bank="b",
        ),
        reports_by_result=reports_by_result,
    )


async def start(flow: Flow, inp: PaymentInput) -> tuple[WorkflowHandle[Any, PaymentResult], WorkflowHandle[Any, None]]:
    """The order (a Listener hearing its payment events), then its payment child."""
    order = await flow.listener(inp.parent_workflow_id)
    handle = await flow.client.start_workflow(
        PaymentWorkflow.run, inp, id=f"payment-{inp.payment_no}", task_queue=flow.queue
    )
    return handle, order


async def events(order: WorkflowHandle[Any, None]) -> list[str]:
    return [e["kind"] for e in await heard(order, ORDER_PAYMENT_SIGNAL)]


async def paid_callback(
    handle: WorkflowHandle[Any, Any], inp: PaymentInput, amount_minor: int = AMOUNT, party: str = "wechat"
) -> None:
    """The channel's signed callback, as the API signals it to the flow."""
    await handle.signal(
        PaymentWorkflow.notification,
        {
            "event_id": f"e-{inp.payment_no}-{amount_minor}",
            "event_type": "payment.succeeded",
            "party": party,
            "out_trade_no": inp.payment_no,
            "amount_minor": amount_minor,
            "currency": "CNY",
            "channel_txn_id": f"TXN-{amount_minor}",
        },
    )


async def test_the_callback_tells_of_the_payment_before_any_poll(temporal: Client) -> None:
    channels = Channels()
    flow = Flow(temporal, PaymentWorkflow, channels.doubles())
    inp = payment(flow)
    async with flow.worker:
        handle, order = await start(flow, inp)
        await eventually(lambda: at_stage(handle, "AWAITING_PAYMENT"))
        await paid_callback(handle, inp, amount_minor=AMOUNT - 1)  # not this payment's amount: ignored
        await paid_callback(handle, inp)
        result = await answered(handle.result())
        assert await events(order) == ["ready", "succeeded"]
    assert result.status is PaymentStatus.SUCCEEDED and result.channel == "wechat" and result.polls == 0
    [capture] = channels.of("payments.capture")
    assert capture.channel_txn_id == f"TXN-{AMOUNT}" and capture.amount_minor == AMOUNT and not capture.after_cancel
    assert "channel.query_order" not in channels.names() and "channel.close_order" not in channels.names()
    assert channels.attempts() == [("wechat", AttemptStatus.CREATED)]


async def test_an_order_that_asked_for_it_hears_of_the_success_from_the_result_alone(temporal: Client) -> None:
    channels = Channels()
    flow = Flow(temporal, PaymentWorkflow, channels.doubles())
    inp = payment(flow, reports_by_result=True)
    async with flow.worker:
        handle, order = await start(flow, inp)
        await eventually(lambda: at_stage(handle, "AWAITING_PAYMENT"))
        await paid_callback(handle, inp)
        result = await answered(handle.result())
        assert await events(order) == ["ready"]  # no SUCCEEDED signal: the result says it
    assert result.status is PaymentStatus.SUCCEEDED and result.channel == "wechat" and not result.paid_after_cancel
    [capture] = channels.of("payments.capture")
    assert capture.amount_minor == AMOUNT and not capture.after_cancel


async def test_after_a_fail_over_the_order_hears_of_the_success_before_the_other_channel_is_closed(
    temporal: Client,
) -> None:
    channels = Channels(refuse_create={"wechat"})
    flow = Flow(temporal, PaymentWorkflow, channels.doubles())
    inp = payment(flow, weights={"wechat": 1, "alipay": 1}, reports_by_result=True)
    async with flow.worker:
        handle, order = await start(flow, inp)
        await eventually(lambda: at_stage(handle, "AWAITING_PAYMENT"))
        await paid_callback(handle, inp, party="alipay")
        result = await answered(handle.result())
        assert await events(order) == ["ready", "succeeded"]
    assert result.status is PaymentStatus.SUCCEEDED and result.channel == "alipay"
    assert channels.of("channel.close_order") == ["wechat"]


async def test_a_channel_order_the_order_opened_is_not_opened_again_and_the_fail_over_is_closed(
    temporal: Client,
) -> None:
    # The order routed and opened it in its own first task (wechat refused, alipay opened): the payment
    # only waits for it, and closes the channel order the fail-over may have left behind.
    channels = Channels()
    flow = Flow(temporal, PaymentWorkflow, channels.doubles())
    opened = OpenedPayment(
        view=ChannelOrderView(channel="alipay", status="NOTPAY", pay_url="https://alipay.invalid/pay"),
        tried=["wechat", "alipay"],
        attempts=2,
        deadline=datetime.now(UTC) + timedelta(seconds=60),
    )
    inp = payment(flow, weights={"wechat": 1, "alipay": 1}, reports_by_result=True).model_copy(
        update={"opened": opened}
    )
    async with flow.worker:
        handle, order = await start(flow, inp)
        await eventually(lambda: at_stage(handle, "AWAITING_PAYMENT"))
        await paid_callback(handle, inp, party="alipay")
        result = await answered(handle.result())
        assert await events(order) == ["succeeded"]  # no READY: the order answered with the pay URL itself
    assert result.status is PaymentStatus.SUCCEEDED and result.channel == "alipay" and result.attempts == 2
    assert "channel.create_order" not in channels.names() and channels.attempts() == []
    assert [c.channel for c in channels.of("payments.capture")] == ["alipay"]
    assert channels.of("channel.close_order") == ["wechat"]


async def test_a_lost_callback_is_made_up_for_by_polling(temporal: Client) -> None:
    channels = Channels(queries=[view("wechat", "NOTPAY"), view("wechat", "SUCCESS")])
    flow = Flow(temporal, PaymentWorkflow, channels.doubles())
    inp = payment(flow, poll=1)
    async with flow.worker:
        handle, order = await start(flow, inp)
        result = await answered(handle.result())
        assert await events(order) == ["ready", "succeeded"]
    assert result.status is PaymentStatus.SUCCEEDED and result.polls == 2
    assert [c.channel_txn_id for c in channels.of("payments.capture")] == ["TXN1"]


async def test_a_poll_answer_with_another_amount_is_not_a_payment_and_the_deadline_closes_it(temporal: Client) -> None:
    channels = Channels(queries=[view("wechat", "SUCCESS", amount_minor=1)])
    flow = Flow(temporal, PaymentWorkflow, channels.doubles())
    inp = payment(flow, timeout=3, poll=1)  # time for a poll or two before the deadline
    async with flow.worker:
        handle, order = await start(flow, inp)
        result = await answered(handle.result())
        assert await events(order) == ["ready", "expired"]
    assert result.status is PaymentStatus.CLOSED and result.polls >= 1
    assert channels.of("payments.capture") == []
    assert channels.of("channel.close_order") == ["wechat"]
    # `finish` is an idempotent local activity, run again when a loaded worker's task is retried: what
    # matters is that every run recorded the same outcome.
    assert {(o.status, o.reason) for o in channels.of("payments.finish")} == {(PaymentStatus.CLOSED, "closed unpaid")}


async def test_a_channel_that_will_not_open_the_order_is_failed_over(temporal: Client) -> None:
    channels = Channels(refuse_create={"wechat"})
    flow = Flow(temporal, PaymentWorkflow, channels.doubles())
    inp = payment(flow, weights={"wechat": 1, "alipay": 1})
    async with flow.worker:
        handle, order = await start(flow, inp)
        await eventually(lambda: at_stage(handle, "AWAITING_PAYMENT"))
        ready = (await heard(order, ORDER_PAYMENT_SIGNAL))[0]
        assert ready["channel"] == "alipay" and ready["pay_url"] == "https://alipay.invalid/pay"
        await paid_callback(handle, inp, party="alipay")
        result = await answered(handle.result())
    assert result.status is PaymentStatus.SUCCEEDED and result.channel == "alipay" and result.attempts == 2
    assert channels.attempts() == [("wechat", AttemptStatus.FAILED), ("alipay", AttemptStatus.CREATED)]
    assert [c.channel for c in channels.of("payments.capture")] == ["alipay"]
    # The refused create may have landed all the same: that channel's order is closed too.
    assert channels.of("channel.close_order") == ["wechat"]


async def test_when_no_channel_opens_the_order_the_payment_fails_and_the_order_hears_it(temporal: Client) -> None:
    channels = Channels(refuse_create={"wechat", "alipay"})
    flow = Flow(temporal, PaymentWorkflow, channels.doubles())
    inp = payment(flow, weights={"wechat": 1, "alipay": 1})
    async with flow.worker:
        handle, order = await start(flow, inp)
        result = await answered(handle.result())
        [failed] = await heard(order, ORDER_PAYMENT_SIGNAL)
    assert result.status is PaymentStatus.FAILED and failed["kind"] == "failed"
    assert "wechat: " in failed["reason"] and "alipay: " in failed["reason"]
    assert [o.status for o in channels.of("payments.finish")] == [PaymentStatus.FAILED]


async def test_a_close_refused_because_the_customer_just_paid_is_a_payment(temporal: Client) -> None:
    channels = Channels(close="SUCCESS")
    flow = Flow(temporal, PaymentWorkflow, channels.doubles())
    inp = payment(flow, timeout=1)
    async with flow.worker:
        handle, order = await start(flow, inp)
        result = await answered(handle.result())
        assert await events(order) == ["ready", "succeeded"]
    assert result.status is PaymentStatus.SUCCEEDED and not result.paid_after_cancel
    [capture] = channels.of("payments.capture")
    assert not capture.after_cancel
    assert channels.of("payments.finish") == []


async def test_a_payment_landing_after_the_order_was_cancelled_is_captured_as_paid_after_cancel(
    temporal: Client,
) -> None:
    channels = Channels(close="SUCCESS")
    flow = Flow(temporal, PaymentWorkflow, channels.doubles())
    inp = payment(flow)
    async with flow.worker:
        handle, order = await start(flow, inp)
        await eventually(lambda: at_stage(handle, "AWAITING_PAYMENT"))
        await handle.signal(PaymentWorkflow.close)
        result = await answered(handle.result())
        assert await at_stage(handle, "PAID_AFTER_CANCEL")
        assert await events(order) == ["ready", "succeeded"]
    assert result.status is PaymentStatus.SUCCEEDED and result.paid_after_cancel
    [capture] = channels.of("payments.capture")
    assert capture.after_cancel


async def test_a_customer_who_paid_on_both_channels_is_refunded_the_duplicate(temporal: Client) -> None:
    # The refused create had landed after all, and the customer paid there too: one payment, one charge.
    channels = Channels(refuse_create={"wechat"}, paid_too={"wechat"})
    flow = Flow(temporal, PaymentWorkflow, channels.doubles(), others=[DuplicateRefund])
    inp = payment(flow, weights={"wechat": 1, "alipay": 1})
    async with flow.worker:
        handle, order = await start(flow, inp)
        await eventually(lambda: at_stage(handle, "AWAITING_PAYMENT"))
        await paid_callback(handle, inp, party="alipay")
        result = await answered(handle.result())
        assert await events(order) == ["ready", "succeeded"]  # the order hears of one payment
        refund_no = f"RF{inp.payment_no.removeprefix('PAY')}WE"  # as the payment flow numbers the duplicate's refund
        refund = await answered(temporal.get_workflow_handle_for(DuplicateRefund.run, f"refund-{refund_no}").result())
    assert result.status is PaymentStatus.SUCCEEDED and result.channel == "alipay"
    assert [c.channel for c in channels.of("payments.capture")] == ["alipay", "wechat"]
    assert refund.failure_reason == f"wechat {AMOUNT} {RefundOrigin.PAYMENT.value}"
