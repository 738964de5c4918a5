"""The later steps of an order (dispatch to a service provider, cancellation and its refund), kept apart
from the flow's decisions in workflows/order.py; deterministic workflow code like it."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import timedelta

from temporalio import workflow
from temporalio.exceptions import FailureError

with workflow.unsafe.imports_passed_through():
    from activities.orders import OrderActivities
    from domain.numbers import cancellation_refund_no
    from domain.orders import (
        DispatchRequest,
        FulfilmentEvent,
        FulfilmentRequest,
        OrderInput,
        OrderResult,
        OrderStatus,
        Transition,
    )
    from domain.payments import PaymentEvent, PaymentResult
    from domain.refunds import RefundInput, RefundOrigin
    from workflows import stages
    from workflows.calls import db_step, wait_until
    from workflows.ids import refund_workflow_id
    from workflows.payment import PaymentWorkflow
    from workflows.refund import RefundWorkflow


class DispatchAndCancel:
    # Provided by OrderWorkflow.
    _inp: OrderInput
    _payment: PaymentEvent | None
    _cancel_reason: str | None
    _provider_id: str | None
    _dispatch_pending: bool
    _refund_no: str | None
    _fulfilment: list[FulfilmentRequest]
    _handled: int
    _local: bool  # database writes as local activities (workflows/order.py: LOCAL_STEPS)
    _move: Callable[..., Awaitable[None]]  # (to, event, cause, **fields): record a status change

    async def _dispatch(self) -> bool:
        terms, declined = self._inp.terms, list[str]()
        for attempt in range(1, terms.dispatch_max_attempts + 1):
            self._dispatch_pending = True
            provider = await db_step(
                OrderActivities.dispatch,
                DispatchRequest(order_no=self._inp.order_no, attempt=attempt, exclude=declined),
                local=self._local,
            )
            self._provider_id, self._dispatch_pending = provider, False
            if provider is None:
                stages.say(f"no provider free on attempt {attempt}/{terms.dispatch_max_attempts}")
                await workflow.sleep(timedelta(seconds=terms.dispatch_accept_timeout_seconds))
                continue
            stages.enter(
                "DISPATCHING",
                f"offered to provider {provider} (attempt {attempt}/{terms.dispatch_max_attempts}),"
                f" waiting {terms.dispatch_accept_timeout_seconds}s for acceptance",
            )
            answered = await wait_until(lambda: bool(self._fulfilment), terms.dispatch_accept_timeout_seconds)
            req = self._fulfilment[0] if answered else None
            if req is not None and req.event is FulfilmentEvent.PROVIDER_ACCEPTED:
                await self._move(OrderStatus.IN_SERVICE, "provider-accepted", f"provider {provider} accepted")
                self._done_with(req)
                return True
            # From here on a late answer of this provider is refused, not taken for the next one's.
            self._provider_id, self._dispatch_pending = None, attempt < terms.dispatch_max_attempts
            declined.append(provider)
            outcome = "declined" if req else "timeout"
            await db_step(
                OrderActivities.transition,
                Transition(
                    order_no=self._inp.order_no,
                    event=f"provider-{attempt}-{outcome}",
                    cause=f"provider {provider} {'declined' if req else 'did not answer in time'}",
                ),
                local=self._local,
            )
            if req is not None:
                self._done_with(req)
        return False

    def _done_with(self, req: FulfilmentRequest) -> None:
        self._fulfilment.remove(req)
        self._handled += 1

    async def _cancel_unpaid(
        self, payment: workflow.ChildWorkflowHandle[PaymentWorkflow, PaymentResult]
    ) -> OrderResult:
        event = self._payment
        reason = self._cancel_reason or (event.reason if event else None) or "payment not completed"
        await self._move(OrderStatus.CANCELLED, "cancelled", reason, cancel_reason=reason)
        if self._cancel_reason is not None:
            try:
                await payment.signal(PaymentWorkflow.close)
            except FailureError:
                # The payment flow ended before the close reached it (paid a moment before the cancel, or
                # closed at its deadline): its result below says which. Letting this fail the order would
                # leave a paid, cancelled order with nobody to refund it.
                pass
        stages.enter(
            "CANCELLED_CLOSING_PAYMENT", f"cancelled ({reason}); waiting for payment {self._inp.payment_no} to close"
        )
        result = await payment
        if result.status.value == "SUCCEEDED":
            # Paid while being cancelled: the order stays cancelled and the money goes back.
            return await self._refund_all(reason, self._inp.request.payable_minor, late=True)
        return await self._cancelled_unpaid(reason)

    async def _cancelled_unpaid(self, reason: str) -> OrderResult:
        stages.enter("CANCELLED", f"cancelled before payment: {reason}")
        await workflow.wait_condition(workflow.all_handlers_finished)
        return OrderResult(order_no=self._inp.order_no, status=OrderStatus.CANCELLED, cancel_reason=reason)

    async def _cancel_paid(self, reason: str, paid_minor: int) -> OrderResult:
        await self._move(
            OrderStatus.CANCELLED, "cancelled", reason, cancel_reason=reason, refund_required_minor=paid_minor
        )
        return await self._refund_all(reason, paid_minor, late=False)

    async def _refund_all(self, reason: str, amount: int, *, late: bool) -> OrderResult:
        """Return what the customer paid for an order that will not be served."""
        inp = self._inp
        self._refund_no = cancellation_refund_no(inp.order_no, late=late)
        if late:
            await db_step(
                OrderActivities.transition,
                Transition(
                    order_no=inp.order_no,
                    event="paid-after-cancel",
                    cause=f"paid {amount} after cancellation",
                    refund_required_minor=amount,
                ),
                local=self._local,
            )
        stages.enter(
            "REFUNDING",
            f"cancelled ({reason}); refunding {amount} {inp.request.currency} "
            f"paid through {inp.payment_no} as {self._refund_no}",
        )
        refund = await workflow.execute_child_workflow(
            RefundWorkflow.run,
            RefundInput(
                refund_no=self._refund_no,
                order_no=inp.order_no,
                payment_no=inp.payment_no,
                amount_minor=amount,
                reason=reason,
                origin=RefundOrigin.ORDER,
                requested_by="order-flow",
                terms=inp.terms.refund,
            ),
            id=refund_workflow_id(self._refund_no),
            parent_close_policy=workflow.ParentClosePolicy.ABANDON,
        )
        stages.enter("CANCELLED", f"cancelled ({reason}); refund {self._refund_no}: {refund.status.value}")
        await workflow.wait_condition(workflow.all_handlers_finished)
        return OrderResult(
            order_no=inp.order_no,
            status=OrderStatus.CANCELLED,
            cancel_reason=reason,
            refund_required_minor=amount,
            refund_no=self._refund_no,
        )
