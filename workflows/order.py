"""OrderWorkflow (`order-{order_no}`): from placement to settleable, or to cancellation.

Placement is an update-with-start: the caller gets the payment parameters in the same call. The
flow waits for the payment flow (its child), the merchant, a service provider, delivery and the
customer's confirmation, each with the deadline of its terms; decisions from outside come in as
Updates with validators, so a refused one changes nothing and says why.
"""

from __future__ import annotations

from datetime import timedelta

from temporalio import workflow
from temporalio.exceptions import ApplicationError

with workflow.unsafe.imports_passed_through():
    from activities.orders import OrderActivities
    from domain.orders import (
        CancelRequest,
        FulfilmentEvent,
        FulfilmentRequest,
        OrderCreated,
        OrderInput,
        OrderResult,
        OrderStatus,
        PaymentParams,
        Transition,
        TransitionResult,
    )
    from domain.payments import PaymentEvent, PaymentEventKind, PaymentInput, PaymentResult, PaymentStatus
    from domain.refusals import Refusal
    from workflows import stages
    from workflows.calls import STEP_FAILED, db_step, passed_on, refused, wait_until
    from workflows.ids import payment_workflow_id
    from workflows.order_steps import DispatchAndCancel
    from workflows.payment import PaymentWorkflow
    from workflows.payment_orders import open_channel_order, record_outcome


# Fulfilment events are judged again after the handler's wait, and the IN_SERVICE loop takes only
# arrived/delivered: two identical events (an app retry) may both pass validation, and the second
# must not be taken for the next step. Older histories replay without it.
FULFILMENT_REJUDGED = "fulfilment-rejudged"
# The flow's own database writes run as local activities (in the flow's task, recorded as markers):
# a status change answers its update in one workflow task instead of three. Older histories replay
# with activity tasks.
LOCAL_STEPS = "order-local-steps"
# The payment child reports a plain success by completing (its result) instead of a signal before it
# completes: one message, and one workflow task fewer in each flow. A flow with this patch also has
# every earlier one (local steps, fulfilment rejudged) and asks for no other: one patch marker and one
# search-attribute upsert per flow instead of three. Older histories replay as before.
PAID_BY_RESULT = "order-paid-by-result"
# The order opens the channel order itself (local activities, the same routing as the payment flow's)
# and answers the placement in its first workflow task, instead of waiting for its payment child to
# open it and signal READY (two more tasks before the answer); the child gets the opened channel order
# in its input and only waits, captures or closes. Implies every earlier patch (one marker).
OPENS_PAYMENT = "order-opens-payment"


@workflow.defn(name="OrderWorkflow")
class OrderWorkflow(DispatchAndCancel):
    def __init__(self) -> None:
        # _status is where the flow has decided to be (validators judge by it); _recorded is what the
        # database already shows (update answers wait for it, so a caller's next read agrees).
        self._status: OrderStatus | None = None
        self._recorded: OrderStatus | None = None
        self._params: PaymentParams | None = None
        self._refusal: ApplicationError | None = None
        self._payment: PaymentEvent | None = None
        self._cancel_reason: str | None = None
        self._accepted = False
        self._confirmed = False
        self._provider_id: str | None = None
        self._dispatch_pending = False
        self._refund_no: str | None = None
        self._fulfilment: list[FulfilmentRequest] = []
        self._handled = 0
        self._fulfilment_refusals: dict[int, ApplicationError] = {}  # by ticket, set by the IN_SERVICE loop
        self._local = False
        self._paid_by_result = False
        self._opens_payment = False

    # --- what the outside world sends -----------------------------------------------------------
    @workflow.update
    async def placed(self) -> OrderCreated:
        await workflow.wait_condition(lambda: self._params is not None or self._refusal is not None)
        if self._refusal is not None:
            raise self._refusal
        assert self._params is not None and self._recorded is not None
        return OrderCreated(
            order_no=self._inp.order_no,
            status=self._recorded,
            payable_minor=self._inp.request.payable_minor,
            payment=self._params,
        )

    @workflow.signal(name="payment_event")
    def payment_event(self, event: PaymentEvent) -> None:
        if event.kind is PaymentEventKind.READY:
            assert event.channel and event.pay_url and event.expires_at
            self._params = PaymentParams(
                payment_no=event.payment_no, channel=event.channel, pay_url=event.pay_url, expires_at=event.expires_at
            )
            return
        if event.kind is PaymentEventKind.FAILED and self._params is None:
            self._refusal = refused(Refusal.PAYMENT_UNAVAILABLE, event.reason or "no payment channel available")
        self._payment = event

    @workflow.update
    async def cancel(self, req: CancelRequest) -> TransitionResult:
        self._cancel_reason = req.reason
        await workflow.wait_condition(lambda: self._recorded is OrderStatus.CANCELLED)
        return self._view()

    @cancel.validator
    def _check_cancel(self, req: CancelRequest) -> None:
        # Before the merchant has accepted, the customer may walk away; a paid order is refunded in full.
        if self._status not in (OrderStatus.AWAITING_PAYMENT, OrderStatus.AWAITING_MERCHANT) or self._accepted:
            raise refused(
                Refusal.NOT_CANCELLABLE,
                f"only an order the merchant has not accepted can be cancelled (it is {self._status})",
            )
        if self._cancel_reason is not None:
            raise refused(Refusal.NOT_CANCELLABLE, "the order is already being cancelled")

    @workflow.update
    async def accept(self) -> TransitionResult:
        self._accepted = True
        await workflow.wait_condition(lambda: self._recorded in (OrderStatus.DISPATCHING, OrderStatus.CANCELLED))
        return self._view()

    @accept.validator
    def _check_accept(self) -> None:
        if self._status is not OrderStatus.AWAITING_MERCHANT or self._accepted or self._cancel_reason is not None:
            raise refused(Refusal.NOT_ACCEPTABLE, f"the order is {self._status}, not awaiting the merchant")

    @workflow.update
    async def fulfilment(self, req: FulfilmentRequest) -> TransitionResult:
        # A caller may have read the provider from the database a moment before the dispatch result
        # reached this flow: wait for it, then judge.
        await workflow.wait_condition(lambda: not self._dispatch_pending)
        if self._rejudged():
            # Another update (the same event sent twice) may have been queued or taken meanwhile.
            self._judge_fulfilment(req, provider_known=True)
        else:
            self._check_provider(req)
        self._fulfilment.append(req)
        ticket = self._handled + len(self._fulfilment)
        await workflow.wait_condition(lambda: self._handled >= ticket)
        refusal = self._fulfilment_refusals.pop(ticket, None)
        if refusal is not None:
            raise refusal
        return self._view()

    @fulfilment.validator
    def _check_fulfilment(self, req: FulfilmentRequest) -> None:
        self._judge_fulfilment(req, provider_known=not self._dispatch_pending)

    def _judge_fulfilment(self, req: FulfilmentRequest, *, provider_known: bool) -> None:
        expected = (
            OrderStatus.DISPATCHING
            if req.event in (FulfilmentEvent.PROVIDER_ACCEPTED, FulfilmentEvent.PROVIDER_REJECTED)
            else OrderStatus.IN_SERVICE
        )
        if self._status is not expected or self._fulfilment:
            raise refused(Refusal.UNEXPECTED_EVENT, f"{req.event} is not expected while the order is {self._status}")
        if provider_known:
            self._check_provider(req)

    def _check_provider(self, req: FulfilmentRequest) -> None:
        if req.provider_id != self._provider_id:
            raise refused(Refusal.WRONG_PROVIDER, f"provider {req.provider_id} is not the one assigned to this order")

    @workflow.update
    async def confirm(self) -> TransitionResult:
        self._confirmed = True
        await workflow.wait_condition(lambda: self._recorded is OrderStatus.COMPLETED)
        return self._view()

    @confirm.validator
    def _check_confirm(self) -> None:
        if self._status is not OrderStatus.DELIVERED or self._confirmed:
            raise refused(Refusal.NOT_CONFIRMABLE, f"only a delivered order can be confirmed (it is {self._status})")

    # --- the flow -------------------------------------------------------------------------------
    @workflow.run
    async def run(self, inp: OrderInput) -> OrderResult:
        self._inp = inp
        self._opens_payment = workflow.patched(OPENS_PAYMENT)
        self._paid_by_result = self._opens_payment or workflow.patched(PAID_BY_RESULT)
        self._local = self._paid_by_result or workflow.patched(LOCAL_STEPS)
        terms = inp.terms
        # Newer flows enter their first stage in the identifying upsert itself.
        creating = ("CREATING", "recording the order and reserving stock")
        stages.identify(
            "order",
            order_no=inp.order_no,
            merchant_id=inp.request.merchant_id,
            amount_minor=inp.request.payable_minor,
            entering=creating if self._local else None,
        )
        if not self._local:
            stages.enter(*creating)
        try:
            await db_step(OrderActivities.create, inp, local=self._local)
        except STEP_FAILED as err:
            self._refusal = passed_on(err)
            stages.enter("REFUSED", f"not placed: {self._refusal.message}")
            await workflow.wait_condition(workflow.all_handlers_finished)
            return OrderResult(order_no=inp.order_no, status=OrderStatus.CANCELLED, cancel_reason=self._refusal.message)
        self._status = self._recorded = OrderStatus.AWAITING_PAYMENT
        pay = PaymentInput(
            payment_no=inp.payment_no,
            order_no=inp.order_no,
            merchant_id=inp.request.merchant_id,
            amount_minor=inp.request.payable_minor,
            currency=inp.request.currency,
            description=f"order {inp.order_no}",
            preferred_channel=inp.request.channel,
            channel_weights=terms.channel_weights,
            timeout_seconds=terms.payment_timeout_seconds,
            poll_initial_seconds=terms.payment_poll_initial_seconds,
            poll_max_seconds=terms.payment_poll_max_seconds,
            notify_url=terms.notify_url,
            parent_workflow_id=workflow.info().workflow_id,
            refund_terms=terms.refund,
            reports_by_result=self._paid_by_result,
        )
        if self._opens_payment:
            deadline = workflow.now() + timedelta(seconds=terms.payment_timeout_seconds)
            routed = await open_channel_order(pay, deadline=deadline, local=True)
            if routed.opened is None:
                return await self._no_channel(routed.failure)
            view = routed.opened.view
            assert view.pay_url is not None
            # The placement is answered now, in this task, with the child's start.
            self._params = PaymentParams(
                payment_no=inp.payment_no, channel=view.channel, pay_url=view.pay_url, expires_at=deadline
            )
            pay.opened = routed.opened
        payment = await workflow.start_child_workflow(
            PaymentWorkflow.run,
            pay,
            id=payment_workflow_id(inp.payment_no),
            # The payment must finish closing or capturing even if this order ends first.
            parent_close_policy=workflow.ParentClosePolicy.ABANDON,
        )
        stages.enter(
            "AWAITING_PAYMENT", f"waiting for payment {inp.payment_no} (deadline in {terms.payment_timeout_seconds}s)"
        )
        await workflow.wait_condition(
            lambda: self._payment is not None or self._cancel_reason is not None or self._paid_by(payment)
        )
        if self._payment is None and self._paid_by(payment):
            self._payment = PaymentEvent(
                kind=PaymentEventKind.SUCCEEDED,
                payment_no=inp.payment_no,
                channel=payment.result().channel,
                amount_minor=inp.request.payable_minor,
            )
        if self._payment is None or self._payment.kind is not PaymentEventKind.SUCCEEDED:
            return await self._cancel_unpaid(payment)

        paid = self._payment.amount_minor
        await self._move(
            OrderStatus.AWAITING_MERCHANT, "paid", f"paid through {self._payment.channel}", paid_minor=paid
        )
        stages.enter(
            "AWAITING_MERCHANT",
            f"paid; waiting for merchant {inp.request.merchant_id} to accept "
            f"(within {terms.merchant_accept_timeout_seconds}s)",
        )
        decided = await wait_until(
            lambda: self._accepted or self._cancel_reason is not None, terms.merchant_accept_timeout_seconds
        )
        if not decided or self._cancel_reason is not None:
            return await self._cancel_paid(self._cancel_reason or "merchant did not accept in time", paid)
        await self._move(OrderStatus.DISPATCHING, "accepted", "merchant accepted")

        if not await self._dispatch():
            return await self._cancel_paid(
                f"no service provider accepted after {terms.dispatch_max_attempts} tries", paid
            )
        stages.enter("IN_SERVICE", f"provider {self._provider_id} is serving the order; waiting for delivery")
        while self._status is OrderStatus.IN_SERVICE:
            await workflow.wait_condition(lambda: bool(self._fulfilment))
            req = self._fulfilment[0]
            if req.event is FulfilmentEvent.ARRIVED:
                await db_step(
                    OrderActivities.transition,
                    Transition(order_no=inp.order_no, event="arrived", cause=f"provider {req.provider_id} arrived"),
                    local=self._local,
                )
            elif req.event is FulfilmentEvent.DELIVERED or not self._rejudged():
                await self._move(OrderStatus.DELIVERED, "delivered", f"provider {req.provider_id} delivered")
            else:  # only delivery ends the service: anything else is refused and changes nothing
                self._fulfilment_refusals[self._handled + 1] = refused(
                    Refusal.UNEXPECTED_EVENT, f"{req.event} is not expected while the order is {self._status}"
                )
            self._done_with(req)

        stages.enter(
            "DELIVERED", f"waiting for the customer to confirm (auto-confirm in {terms.auto_confirm_seconds}s)"
        )
        confirmed = await wait_until(lambda: self._confirmed, terms.auto_confirm_seconds)
        await self._move(OrderStatus.COMPLETED, "completed", "customer confirmed" if confirmed else "auto-confirmed")
        stages.enter("AFTER_SALE", f"completed; after-sale window open for {terms.after_sale_window_seconds}s")
        await workflow.sleep(timedelta(seconds=terms.after_sale_window_seconds))
        await db_step(OrderActivities.mark_settleable, inp.order_no, local=self._local)
        stages.enter("SETTLEABLE", "after-sale window closed; waiting for the next settlement cycle")
        await workflow.wait_condition(workflow.all_handlers_finished)
        return OrderResult(order_no=inp.order_no, status=OrderStatus.COMPLETED, settleable=True)

    # --- helpers --------------------------------------------------------------------------------
    async def _no_channel(self, reason: str) -> OrderResult:
        """No channel opened the order's payment (a flow that opens it itself): the payment is recorded
        FAILED and the order cancelled, as when its payment flow told it so; the placement is refused."""
        await record_outcome(self._inp.payment_no, PaymentStatus.FAILED, reason, local=True)
        await self._move(OrderStatus.CANCELLED, "cancelled", reason, cancel_reason=reason)
        self._refusal = refused(Refusal.PAYMENT_UNAVAILABLE, reason)
        return await self._cancelled_unpaid(reason)

    def _rejudged(self) -> bool:
        return self._paid_by_result or workflow.patched(FULFILMENT_REJUDGED)

    @staticmethod
    def _paid_by(payment: workflow.ChildWorkflowHandle[PaymentWorkflow, PaymentResult]) -> bool:
        """Whether the payment flow ended paid (a flow started with `reports_by_result` says so only
        this way; an older one signalled SUCCEEDED before it ended, so this is never the news there)."""
        if not payment.done() or payment.cancelled() or payment.exception() is not None:
            return False
        return payment.result().status is PaymentStatus.SUCCEEDED

    async def _move(self, to: OrderStatus, event: str, cause: str, **fields: int | str) -> None:
        # The flow's own state moves first: whoever reads the new status from the database and acts on it
        # at once must find the flow already there.
        self._status = to
        await db_step(
            OrderActivities.transition,
            Transition(order_no=self._inp.order_no, to=to, event=event, cause=cause, **fields),
            local=self._local,
        )
        self._recorded = to

    def _view(self) -> TransitionResult:
        assert self._recorded is not None
        return TransitionResult(
            order_no=self._inp.order_no, status=self._recorded, provider_id=self._provider_id, refund_no=self._refund_no
        )
