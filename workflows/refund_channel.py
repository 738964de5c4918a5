"""How RefundWorkflow follows a refund at the channel: unknown is not failed.

A refund is handed to finance only when the channel definitely did not make it: it answered FAILED,
or it refused our request and its query API confirms it has no such refund. A timeout, a refused
retry of a request that had landed, a query that 404s for a refund the channel accepted, or a refund
still PROCESSING at the poll deadline are unknowns: we keep asking. While finance decides, the
channel is still heard (callbacks and polls): a late success completes the refund and cancels the
manual transfer.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import datetime, timedelta

from temporalio import workflow
from temporalio.exceptions import ActivityError, ApplicationError

with workflow.unsafe.imports_passed_through():
    from activities.channels import ChannelActivities
    from domain.payments import poll_delay
    from domain.refund_rules import ChannelStep, channel_step
    from domain.refunds import ChannelRefundRequest, ChannelRefundView, RefundInput, RefundNotification
    from domain.refusals import Refusal
    from workflows import policies, stages
    from workflows.awaiting import PartyWait, Woke

# Polls back off to this interval while the poll window lasts, and to the longer one after it: a refund
# the channel still processes is asked about less often, never given up on.
MAX_POLL_INTERVAL_SECONDS = 3600
OVERDUE_POLL_INTERVAL_SECONDS = 6 * 3600
# A create that outlived the poll window is tried again (same refund number: the channel deduplicates).
MIN_CREATE_WINDOW = timedelta(hours=1)
DEFINITE = ("SUCCESS", "FAILED")
AWAITING = (ChannelStep.ASK_AGAIN, ChannelStep.REQUEST_AGAIN)


class ChannelFollowing:
    """Mixin of RefundWorkflow (its state is the workflow's)."""

    _inp: RefundInput
    _inbox: list[RefundNotification]
    _note: Callable[[str, str, str], Awaitable[None]]
    _failed: Callable[[str], Awaitable[str]]

    async def _follow_channel(self, channel: str, deadline: datetime) -> str | None:
        """None once the channel refunded; otherwise the reason it definitely did not."""
        inp = self._inp
        await self._note("channel", "REQUESTED", f"refund requested at {channel}")
        view, refusal = await self._create(channel, deadline)
        ask_now = view is None  # the request's outcome is unknown: ask before anything else
        status, accepted = (view.status, True) if view is not None else (None, False)
        failure = view.failure_reason if view is not None else None

        def delay(polls: int) -> int:
            longest = OVERDUE_POLL_INTERVAL_SECONDS if waiting.over() else MAX_POLL_INTERVAL_SECONDS
            return poll_delay(inp.terms.poll_initial_seconds, longest, polls)

        waiting = PartyWait(lambda: bool(self._inbox), delay, deadline=deadline, window=True, floor=1.0)
        while (step := channel_step(status, refused=refusal is not None, accepted=accepted)) in AWAITING:
            if step is ChannelStep.REQUEST_AGAIN:
                # The request timed out and the channel never got it: ask again, the number makes it safe.
                view, refusal = await self._create(channel, deadline)
                ask_now = view is None
                if view is not None:
                    status, failure, accepted = view.status, view.failure_reason, True
                else:
                    status = None
                continue
            if not ask_now:
                if await waiting.next() is Woke.HEARD:
                    if (heard := self._heard()) is not None:
                        status, failure, accepted = heard.status, heard.failure_reason, True
                    continue
                late = f" (past the {inp.terms.poll_max_seconds}s poll window: still asking)" if waiting.over() else ""
                stages.say(f"waiting for {channel} to refund {inp.refund_no}, {waiting.polls} polls so far{late}")
            ask_now = False
            answer = await self._query(channel)
            if answer is None:
                continue  # the query API did not answer: the next poll or the callback will tell
            status = answer.status
            if answer.status != "MISSING":
                failure, accepted = answer.failure_reason, True
        if step is ChannelStep.REFUNDED:
            await self._note("channel", "SUCCEEDED", f"refunded by {channel}")
            return None
        if status == "MISSING":
            return await self._failed(f"{channel} refused the refund ({refusal}) and has no record of it")
        return await self._failed(failure or f"{channel} answered {status}")

    async def _create(self, channel: str, deadline: datetime) -> tuple[ChannelRefundView | None, str | None]:
        """(the channel's answer, None), or (None, why it refused), or (None, None) when nobody knows."""
        inp = self._inp
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
                schedule_to_close_timeout=max(deadline - workflow.now(), MIN_CREATE_WINDOW),
            )
        except ActivityError as err:
            cause = err.cause
            if isinstance(cause, ApplicationError) and cause.type == Refusal.CHANNEL_REJECTED:
                # Possibly a retry refused because the first request landed: the query decides.
                await self._note("channel", "REFUSED", f"{cause.message}: asking {channel} whether it has it")
                return None, cause.message
            await self._note("channel", "UNKNOWN", f"no answer from {channel} ({cause or err}): asking it")
            return None, None
        return view, None

    async def _query(self, channel: str) -> ChannelRefundView | None:
        try:
            view: ChannelRefundView = await workflow.execute_activity_method(
                ChannelActivities.query_refund,
                args=[channel, self._inp.refund_no],
                start_to_close_timeout=policies.CHANNEL_TIMEOUT,
                retry_policy=policies.CHANNEL_QUERY,
            )
        except ActivityError:
            return None
        return view

    def _heard(self) -> ChannelRefundView | None:
        """The definite result the next callback in the inbox carries, if any."""
        n = self._inbox.pop(0)
        if n.out_refund_no == self._inp.refund_no and n.status in DEFINITE:
            return ChannelRefundView(status=n.status, failure_reason=n.failure_reason)
        return None

    async def _channel_refunds_meanwhile(
        self, channel: str, decided: Callable[[], bool], remind: Callable[[int], None]
    ) -> bool:
        """While finance decides on a manual transfer: True as soon as the channel reports the refund made
        after all (callback or poll), False once `decided()`. `remind(n)` is called every reminder period."""
        inp = self._inp
        reminders = 0
        remind_every = timedelta(seconds=inp.terms.approval_remind_seconds)
        waiting = PartyWait(
            lambda: decided() or bool(self._inbox),
            lambda polls: poll_delay(inp.terms.poll_initial_seconds, MAX_POLL_INTERVAL_SECONDS, polls),
            deadline=workflow.now() + remind_every,
            window=True,
            ask_at_deadline=False,
        )
        while not decided():
            woke = await waiting.next()
            if woke is Woke.HEARD:
                while self._inbox:
                    n = self._inbox.pop(0)
                    if n.out_refund_no == inp.refund_no and n.status == "SUCCESS":
                        return True
                continue
            if woke is Woke.OVER:  # the reminder is due, not a poll
                reminders += 1
                remind(reminders)
                waiting.deadline = workflow.now() + remind_every
                continue
            answer = await self._query(channel)
            if answer is not None and answer.status == "SUCCESS":
                return True
        return False
