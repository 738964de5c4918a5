"""The channel-order steps of PaymentWorkflow (open one at a channel, close what was opened, return a
duplicate payment), kept apart from the flow's decisions in workflows/payment.py; deterministic
workflow code like it."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import timedelta

from temporalio import workflow

with workflow.unsafe.imports_passed_through():
    from activities.channels import ChannelActivities
    from domain.numbers import duplicate_refund_no
    from domain.payments import AttemptStatus, ChannelOrderRequest, ChannelOrderView, PaymentInput
    from domain.refunds import RefundInput, RefundOrigin
    from workflows import policies, stages
    from workflows.ids import refund_workflow_id
    from workflows.refund import RefundWorkflow


class ChannelOrders:
    # Provided by PaymentWorkflow.
    _inp: PaymentInput
    _local: bool  # the channel order opened as a local activity (workflows/payment.py: LOCAL_STEPS)
    _record: Callable[..., Awaitable[None]]  # (channel, status, **fields): record an attempt
    _capture: Callable[..., Awaitable[None]]  # (paid, *, after_cancel, tell_order): capture a payment
    _paid_from_inbox: Callable[[], ChannelOrderView | None]

    async def _create(self, channel: str) -> ChannelOrderView:
        inp = self._inp
        req = ChannelOrderRequest(
            channel=channel,
            payment_no=inp.payment_no,
            amount_minor=inp.amount_minor,
            currency=inp.currency,
            description=inp.description,
            notify_url=f"{inp.notify_url}/{channel}",
        )
        # A few quick tries at most (policies.CHANNEL_CREATE): short enough to run in the flow's task.
        run = workflow.execute_local_activity_method if self._local else workflow.execute_activity_method
        view = await run(
            ChannelActivities.create_order,
            req,
            start_to_close_timeout=policies.CHANNEL_TIMEOUT,
            retry_policy=policies.CHANNEL_CREATE,
        )
        await self._record(channel, AttemptStatus.CREATED, channel_order_id=view.channel_order_id, pay_url=view.pay_url)
        return view

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
