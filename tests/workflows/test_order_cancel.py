"""OrderWorkflow cancelled while its payment lands: the close the order sends reaches a payment flow that
has just ended paid. The order stays cancelled and the customer's money goes back; the failed close must
not fail the order (that would leave a paid, cancelled order with nobody to refund it)."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from temporalio import activity, workflow
from temporalio.api.enums.v1 import EventType
from temporalio.client import Client, WorkflowExecutionStatus

from domain.orders import (
    CancelRequest,
    OrderInput,
    OrderResult,
    OrderStatus,
    Transition,
)
from domain.payments import (
    AttemptRecord,
    ChannelOrderRequest,
    ChannelOrderView,
    PaymentEvent,
    PaymentEventKind,
    PaymentInput,
    PaymentResult,
    PaymentStatus,
)
from domain.refunds import RefundInput, RefundResult, RefundStatus
from tests.workflows.conftest import Calls, Flow, answered, eventually, order_input
from workflows.ids import order_workflow_id, payment_workflow_id
from workflows.order import OrderWorkflow


@workflow.defn(name="PaymentWorkflow", sandboxed=False)
class PaidOnDemand:
    """Stands in for the payment child: ends paid when told to."""

    def __init__(self) -> None:
        self._paid = False

    @workflow.signal
    def pay(self) -> None:
        self._paid = True

    @workflow.signal
    def close(self) -> None:
        """Never reached in this test: the flow has ended by the time the order closes it."""

    @workflow.run
    async def run(self, inp: PaymentInput) -> PaymentResult:
        if inp.opened is None:  # an order that opens the channel order itself knows where to pay already
            await workflow.get_external_workflow_handle(inp.parent_workflow_id).signal(
                "payment_event",
                PaymentEvent(
                    kind=PaymentEventKind.READY,
                    payment_no=inp.payment_no,
                    channel="wechat",
                    pay_url="https://wechat.invalid/pay",
                    expires_at=workflow.now() + timedelta(seconds=inp.timeout_seconds),
                ),
            )
        await workflow.wait_condition(lambda: self._paid)
        return PaymentResult(payment_no=inp.payment_no, status=PaymentStatus.SUCCEEDED, channel="wechat")


@workflow.defn(name="RefundWorkflow", sandboxed=False)
class RefundAtOnce:
    @workflow.run
    async def run(self, inp: RefundInput) -> RefundResult:
        return RefundResult(refund_no=inp.refund_no, status=RefundStatus.SUCCEEDED)


async def test_a_close_reaching_a_payment_that_just_ended_paid_leaves_the_order_cancelled_and_refunded(
    temporal: Client,
) -> None:
    calls = Calls()

    @activity.defn(name="orders.create")
    async def create(order: OrderInput) -> None:
        calls.add("orders.create", order.order_no)

    @activity.defn(name="orders.transition")
    async def transition(t: Transition) -> None:
        calls.add("orders.transition", t)
        if t.to is OrderStatus.CANCELLED:
            # While the order records its cancellation, the customer's payment lands and the payment flow
            # ends: the close the order sends next reaches a finished flow.
            payment = temporal.get_workflow_handle(payment_workflow_id(inp.payment_no))

            async def ended() -> bool:
                return (await payment.describe()).status is WorkflowExecutionStatus.COMPLETED

            if not await ended():
                await payment.signal(PaidOnDemand.pay)
            await eventually(ended)

    @activity.defn(name="channel.create_order")
    async def create_order(req: ChannelOrderRequest) -> ChannelOrderView:
        return ChannelOrderView(channel=req.channel, status="NOTPAY", pay_url=f"https://{req.channel}.invalid/pay")

    @activity.defn(name="payments.record_attempt")
    async def record_attempt(a: AttemptRecord) -> None:
        calls.add("payments.record_attempt", a)

    # The order's task waits in its local activity while the payment flow's task runs: hence a cache.
    doubles = [create, transition, create_order, record_attempt]
    flow = Flow(temporal, OrderWorkflow, doubles, others=[PaidOnDemand, RefundAtOnce], cached=True)
    inp = order_input(flow, 1)
    workflow_id = order_workflow_id(inp.order_no)
    async with flow.worker:
        await answered(flow.start_and_ask(OrderWorkflow.run, inp, workflow_id, OrderWorkflow.placed))
        order: Any = temporal.get_workflow_handle_for(OrderWorkflow.run, workflow_id)
        cancelled = await answered(order.execute_update(OrderWorkflow.cancel, CancelRequest(reason="changed my mind")))
        result: OrderResult = await answered(order.result())

    assert cancelled.status is OrderStatus.CANCELLED
    assert result.status is OrderStatus.CANCELLED and result.refund_required_minor == 8800
    assert result.refund_no is not None
    moves = [(t.to, t.event) for t in calls.of("orders.transition")]
    assert moves == [(OrderStatus.CANCELLED, "cancelled"), (None, "paid-after-cancel")]
    # The close did fail (the path under test was taken), and the order went on to refund.
    history = await order.fetch_history()
    assert [e for e in history.events if e.event_type == EventType.EVENT_TYPE_SIGNAL_EXTERNAL_WORKFLOW_EXECUTION_FAILED]
