"""RefundWorkflow (`refund-{refund_no}`): return captured money through the channel, or by a manual
transfer that finance approves when the channel cannot.

Started by the API (after-sale refunds, update-with-start so the caller learns at once whether the
refund was accepted) and by the order and payment flows (money they cannot keep).
"""

from __future__ import annotations

from datetime import datetime, timedelta

from temporalio import workflow
from temporalio.exceptions import ActivityError, ApplicationError

with workflow.unsafe.imports_passed_through():
    from activities.channels import ChannelActivities
    from activities.refunds import RefundActivities
    from activities.refusals import carried
    from domain.maker_checker import Who, check_refund_approver
    from domain.payments import poll_delay
    from domain.refunds import (
        ChannelRefundRequest,
        ChannelRefundView,
        ManualApproval,
        OpenedRefund,
        RefundAttemptRecord,
        RefundCompletion,
        RefundEscalation,
        RefundInput,
        RefundNotification,
        RefundOpened,
        RefundResult,
        RefundStatus,
    )
    from domain.refusals import Refusal
    from workflows import policies, stages
    from workflows.calls import db_step, passed_on, refused, wait_until
    from workflows.refund_channel import ChannelFollowing

# Polls of a refund's result back off to at most this interval; real channels take days.
MAX_POLL_INTERVAL_SECONDS = 3600
# Flows started before it escalated unknown outcomes (old histories replay the old path).
UNKNOWN_IS_NOT_FAILED = "refund-unknown-is-not-failed"


@workflow.defn(name="RefundWorkflow")
class RefundWorkflow(ChannelFollowing):
    def __init__(self) -> None:
        self._opened: OpenedRefund | None = None
        self._refusal: ApplicationError | None = None
        self._inbox: list[RefundNotification] = []
        self._approval: ManualApproval | None = None
        self._awaiting_approval = False
        self._channel_made_it = False  # while waiting for finance: the manual transfer is then cancelled
        self._attempts = 0
        self._done: RefundResult | None = None

    @workflow.update
    async def opened(self) -> RefundOpened:
        await workflow.wait_condition(lambda: self._opened is not None or self._refusal is not None)
        if self._refusal is not None:
            raise self._refusal
        assert self._opened is not None
        return RefundOpened(
            refund_no=self._inp.refund_no,
            status=self._opened.status,
            order_no=self._inp.order_no,
            amount_minor=self._inp.amount_minor,
        )

    @workflow.signal(name="notification")
    def notification(self, payload: dict[str, object]) -> None:
        try:
            self._inbox.append(RefundNotification.model_validate(payload))
        except ValueError:
            workflow.logger.warning("ignoring a notification that is not a refund notification: %s", payload)

    @workflow.update
    async def approve_manual(self, approval: ManualApproval) -> RefundResult:
        self._approval = approval
        await workflow.wait_condition(lambda: self._done is not None)
        assert self._done is not None
        if self._channel_made_it:
            raise self._made_by_channel()  # the channel's success came in while finance approved
        return self._done

    def _made_by_channel(self) -> ApplicationError:
        return refused(
            Refusal.ALREADY_REFUNDED,
            f"refund {self._inp.refund_no} was made by the channel after all: its manual transfer is "
            "cancelled and must not be paid",
        )

    @approve_manual.validator
    def _check_approval(self, approval: ManualApproval) -> None:
        if self._channel_made_it:
            raise self._made_by_channel()
        if not self._awaiting_approval or self._approval is not None:
            raise refused(Refusal.NOT_AWAITING_APPROVAL, "this refund is not waiting for a manual transfer approval")
        with carried():
            check_refund_approver(
                Who(self._inp.requested_by, self._inp.requested_by_key_id),
                Who(approval.approver, approval.approver_key_id),
            )

    @workflow.run
    async def run(self, inp: RefundInput) -> RefundResult:
        self._inp = inp
        self._patient = workflow.patched(UNKNOWN_IS_NOT_FAILED)
        stages.identify("refund", order_no=inp.order_no, amount_minor=inp.amount_minor)
        stages.enter("OPENING", f"checking what order {inp.order_no} can still refund")
        try:
            self._opened = await db_step(RefundActivities.open, inp)
        except ActivityError as err:
            self._refusal = passed_on(err)
            stages.enter("REFUSED", self._refusal.message)
            await workflow.wait_condition(workflow.all_handlers_finished)
            return RefundResult(
                refund_no=inp.refund_no, status=RefundStatus.FAILED, failure_reason=self._refusal.message
            )
        opened = self._opened
        stages.identify("refund", merchant_id=opened.merchant_id)
        stages.enter(
            "PROCESSING",
            f"refunding {inp.amount_minor} {opened.currency} of order {inp.order_no} through {opened.channel}",
        )
        deadline = workflow.now() + timedelta(seconds=inp.terms.poll_max_seconds)
        if self._patient:
            failure = await self._follow_channel(opened.channel, deadline)
        else:
            failure = await self._through_channel(opened.channel, deadline)
        if failure is None:
            await db_step(RefundActivities.complete, RefundCompletion(refund_no=inp.refund_no))
            return self._finish(RefundStatus.SUCCEEDED, f"refunded through {opened.channel}")

        self._attempts += 1
        # Finance may answer as soon as the record says MANUAL_PENDING, which the escalation commits before
        # this flow hears the activity finish: the flow takes an approval from the moment it escalates.
        self._awaiting_approval = True
        await db_step(
            RefundActivities.escalate, RefundEscalation(refund_no=inp.refund_no, reason=failure, seq=self._attempts)
        )
        waiting = (
            f"refund {inp.refund_no} of {inp.amount_minor} {opened.currency} for order {inp.order_no} failed "
            f"at {opened.channel} ({failure}): waiting for finance to approve a manual transfer"
        )
        stages.enter("AWAITING_FINANCE_APPROVAL", waiting)

        def remind(reminders: int) -> None:
            stages.say(
                f"{waiting} (reminder {reminders}, waiting since {reminders * inp.terms.approval_remind_seconds}s)"
            )

        if self._patient:
            if await self._channel_refunds_meanwhile(opened.channel, lambda: self._approval is not None, remind):
                return await self._channel_after_escalation(opened.channel)
        else:
            reminders = 0
            while not await wait_until(lambda: self._approval is not None, inp.terms.approval_remind_seconds):
                reminders += 1
                remind(reminders)
        approval = self._approval
        assert approval is not None
        await self._note("manual", "APPROVED", f"approved by {approval.approver}: {approval.note}")
        await db_step(
            RefundActivities.complete,
            RefundCompletion(
                refund_no=inp.refund_no,
                manual=True,
                approved_by=approval.approver,
                approved_by_key_id=approval.approver_key_id,
                note=approval.note,
                bank=inp.terms.manual_bank,
            ),
        )
        result = self._finish(
            RefundStatus.MANUAL_PAID, f"paid by manual transfer approved by {approval.approver}", failure
        )
        await workflow.wait_condition(workflow.all_handlers_finished)
        return result

    async def _channel_after_escalation(self, channel: str) -> RefundResult:
        """The channel made the refund while it waited for finance: complete it as the channel's and
        cancel the manual transfer (an approval from now on is refused)."""
        self._awaiting_approval = False
        self._channel_made_it = True
        await self._note("channel", "SUCCEEDED", f"refunded by {channel} while waiting for finance")
        await self._note("manual", "CANCELLED", f"{channel} refunded it after all: no manual transfer")
        await db_step(RefundActivities.complete, RefundCompletion(refund_no=self._inp.refund_no))
        result = self._finish(RefundStatus.SUCCEEDED, f"refunded through {channel}; manual transfer cancelled")
        await workflow.wait_condition(workflow.all_handlers_finished)
        return result

    async def _through_channel(self, channel: str, deadline: datetime) -> str | None:
        """None when the channel refunded; otherwise why it could not. (Flows started before
        UNKNOWN_IS_NOT_FAILED; new ones use ChannelFollowing._follow_channel.)"""
        inp = self._inp
        await self._note("channel", "REQUESTED", f"refund requested at {channel}")
        try:
            view = await workflow.execute_activity_method(
                ChannelActivities.create_refund,
                ChannelRefundRequest(
                    channel=channel,
                    refund_no=inp.refund_no,
                    payment_no=inp.payment_no,
                    amount_minor=inp.amount_minor,
                    reason=inp.reason,
                    notify_url=f"{inp.terms.notify_url}/{channel}",
                ),
                start_to_close_timeout=policies.CHANNEL_TIMEOUT,
                retry_policy=policies.CHANNEL_REFUND,
                schedule_to_close_timeout=deadline - workflow.now(),
            )
        except ActivityError as err:
            return await self._failed(f"the channel refused the refund: {err.cause or err}")
        polls = 0
        while view.status == "PROCESSING":
            remaining = (deadline - workflow.now()).total_seconds()
            if remaining <= 0:
                return await self._failed(f"no result from {channel} after {inp.terms.poll_max_seconds}s")
            wait = min(poll_delay(inp.terms.poll_initial_seconds, MAX_POLL_INTERVAL_SECONDS, polls), remaining)
            if await wait_until(lambda: bool(self._inbox), wait):
                n = self._inbox.pop(0)
                if n.out_refund_no == inp.refund_no and n.status in ("SUCCESS", "FAILED"):
                    view = ChannelRefundView(status=n.status, failure_reason=n.failure_reason)
                continue
            polls += 1
            stages.say(f"waiting for {channel} to refund {inp.refund_no}, {polls} polls so far")
            try:
                view = await workflow.execute_activity_method(
                    ChannelActivities.query_refund,
                    args=[channel, inp.refund_no],
                    start_to_close_timeout=policies.CHANNEL_TIMEOUT,
                    retry_policy=policies.CHANNEL_QUERY,
                )
            except ActivityError:
                continue  # the next poll or the callback will tell
        if view.status == "SUCCESS":
            await self._note("channel", "SUCCEEDED", f"refunded by {channel}")
            return None
        return await self._failed(view.failure_reason or f"{channel} answered {view.status}")

    async def _failed(self, reason: str) -> str:
        await self._note("channel", "FAILED", reason)
        return reason

    def _finish(self, status: RefundStatus, how: str, failure: str | None = None) -> RefundResult:
        stages.enter(status.value, f"refund {self._inp.refund_no} of order {self._inp.order_no}: {how}")
        self._done = RefundResult(refund_no=self._inp.refund_no, status=status, failure_reason=failure)
        return self._done

    async def _note(self, kind: str, status: str, detail: str) -> None:
        self._attempts += 1
        await db_step(
            RefundActivities.record_attempt,
            RefundAttemptRecord(
                refund_no=self._inp.refund_no, seq=self._attempts, kind=kind, status=status, detail=detail
            ),
        )
