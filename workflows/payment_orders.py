"""The channel-order steps of a payment: route it over the channels and open a channel order (used by
PaymentWorkflow, and by an order flow that opens its payment itself), close what was opened, return a
duplicate payment. Kept apart from the flows' decisions in workflows/payment.py; deterministic
workflow code like it."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from temporalio import workflow

with workflow.unsafe.imports_passed_through():
    from activities.channels import ChannelActivities
    from activities.payments import PaymentActivities
    from domain.numbers import duplicate_refund_no
    from domain.payments import (
        AttemptRecord,
        AttemptStatus,
        ChannelOrderRequest,
        ChannelOrderView,
        OpenedPayment,
        PaymentInput,
        PaymentOutcome,
        PaymentStatus,
        route_channels,
    )
    from domain.refunds import RefundInput, RefundOrigin
    from workflows import policies, stages
    from workflows.calls import STEP_FAILED, db_step
    from workflows.ids import refund_workflow_id
    from workflows.refund import RefundWorkflow


@dataclass
class Routed:
    """What routing a payment over its channels came to."""

    attempts: int  # attempt records written
    opened: OpenedPayment | None = None  # None: no channel opened an order
    errors: list[str] = field(default_factory=list)

    @property
    def failure(self) -> str:
        return "no payment channel could take the payment (" + "; ".join(self.errors) + ")"


async def open_channel_order(inp: PaymentInput, *, deadline: datetime, local: bool) -> Routed:
    """Ask the payment's channels in routing order (the preferred one first, the others by weight, drawn
    with workflow.random() so replay asks the same) until one opens a channel order; every attempt is
    recorded. `local`: the creates and records run as local activities (in the flow's task)."""
    tried: list[str] = []
    routed = Routed(attempts=0)

    async def record(channel: str, status: AttemptStatus, **fields: str | None) -> None:
        routed.attempts += 1
        await db_step(
            PaymentActivities.record_attempt,
            AttemptRecord(
                payment_no=inp.payment_no,
                order_no=inp.order_no,
                merchant_id=inp.merchant_id,
                amount_minor=inp.amount_minor,
                currency=inp.currency,
                seq=routed.attempts,
                channel=channel,
                status=status,
                **fields,
            ),
            local=local,
        )

    for channel in route_channels(inp.channel_weights, inp.preferred_channel, workflow.random()):
        tried.append(channel)
        req = ChannelOrderRequest(
            channel=channel,
            payment_no=inp.payment_no,
            amount_minor=inp.amount_minor,
            currency=inp.currency,
            description=inp.description,
            notify_url=f"{inp.notify_url}/{channel}",
        )
        # A few quick tries at most (policies.CHANNEL_CREATE): short enough to run in the flow's task.
        run = workflow.execute_local_activity_method if local else workflow.execute_activity_method
        try:
            view = await run(
                ChannelActivities.create_order,
                req,
                start_to_close_timeout=policies.CHANNEL_TIMEOUT,
                retry_policy=policies.CHANNEL_CREATE,
            )
            await record(channel, AttemptStatus.CREATED, channel_order_id=view.channel_order_id, pay_url=view.pay_url)
        except STEP_FAILED as err:
            routed.errors.append(f"{channel}: {err.cause or err}")
            await record(channel, AttemptStatus.FAILED, error=str(err.cause or err))
            continue
        routed.opened = OpenedPayment(view=view, tried=tried, attempts=routed.attempts, deadline=deadline)
        break
    return routed


async def record_outcome(payment_no: str, status: PaymentStatus, reason: str, *, local: bool) -> None:
    """Record a payment CLOSED or FAILED (one that succeeded keeps its status)."""
    await db_step(
        PaymentActivities.finish, PaymentOutcome(payment_no=payment_no, status=status, reason=reason), local=local
    )


class ChannelOrders:
    # Provided by PaymentWorkflow.
    _inp: PaymentInput
    _capture: Callable[..., Awaitable[None]]  # (paid, *, after_cancel, tell_order): capture a payment
    _paid_from_inbox: Callable[[], ChannelOrderView | None]

    async def _close_all(self, tried: list[str], *, give_up_after: timedelta | None) -> ChannelOrderView | None:
        """Close every channel order we opened; the paid one, if a close is refused because it was paid."""
        paid: ChannelOrderView | None = None
        for channel in tried:
            view = await workflow.execute_activity_method(
                ChannelActivities.close_order,
                args=[channel, self._inp.payment_no],
                start_to_close_timeout=policies.CHANNEL_TIMEOUT,
                schedule_to_close_timeout=give_up_after,
                retry_policy=policies.CHANNEL_CLOSE,
            )
            if view.status == "SUCCESS" and paid is None:
                paid = view
        return paid or self._paid_from_inbox()

    async def _return_extras(self, others: list[str]) -> None:
        """Close the other channel orders we opened (a fail-over leaves one behind). If the customer paid
        there too, that money is captured and refunded in full: one payment, one charge."""
        inp = self._inp
        for channel in others:
            view = await workflow.execute_activity_method(
                ChannelActivities.close_order,
                args=[channel, inp.payment_no],
                start_to_close_timeout=policies.CHANNEL_TIMEOUT,
                retry_policy=policies.CHANNEL_CLOSE,
            )
            if view.status != "SUCCESS":
                continue
            await self._capture(view, after_cancel=False, tell_order=False)
            refund_no = duplicate_refund_no(inp.payment_no, channel)
            stages.enter(
                "REFUNDING_DUPLICATE",
                f"{inp.payment_no} was paid twice; refunding the {channel} payment as {refund_no}",
            )
            await workflow.execute_child_workflow(
                RefundWorkflow.run,
                RefundInput(
                    refund_no=refund_no,
                    order_no=inp.order_no,
                    payment_no=inp.payment_no,
                    channel=channel,
                    amount_minor=inp.amount_minor,
                    reason=f"duplicate payment through {channel}",
                    origin=RefundOrigin.PAYMENT,
                    requested_by="payment-flow",
                    terms=inp.refund_terms,
                ),
                id=refund_workflow_id(refund_no),
                parent_close_policy=workflow.ParentClosePolicy.ABANDON,
            )
            stages.enter("SUCCEEDED", f"paid; the duplicate through {channel} was refunded as {refund_no}")
