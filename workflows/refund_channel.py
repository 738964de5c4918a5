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
    from activities.channel_calls import ChannelActivities
    from domain.payments import poll_delay
    from domain.refunds import ChannelRefundRequest, ChannelRefundView, RefundInput, RefundNotification
    from domain.refusals import Refusal
    from workflows import policies, stages
    from workflows.calls import wait_until

# Polls back off to this interval while the poll window lasts, and to the longer one after it: a refund
# the channel still processes is asked about less often, never given up on.
MAX_POLL_INTERVAL_SECONDS = 3600
OVERDUE_POLL_INTERVAL_SECONDS = 6 * 3600
# A create that outlived the poll window is tried again (same refund number: the channel deduplicates).
MIN_CREATE_WINDOW = timedelta(hours=1)
DEFINITE = ("SUCCESS", "FAILED")


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
        polls = 0
        while view is None or view.status not in DEFINITE:
            if not ask_now:
                overdue = workflow.now() >= deadline
                wait: float = poll_delay(
                    inp.terms.poll_initial_seconds,
                    OVERDUE_POLL_INTERVAL_SECONDS if overdue else MAX_POLL_INTERVAL_SECONDS,
                    polls,
                )
                if not overdue:
                    wait = min(wait, max(1.0, (deadline - workflow.now()).total_seconds()))
                woke, heard = await self._heard(wait)
                if heard is not None:
                    view = heard
                if woke:
                    continue
                polls += 1
                late = f" (past the {inp.terms.poll_max_seconds}s poll window: still asking)" if overdue else ""
                stages.say(f"waiting for {channel} to refund {inp.refund_no}, {polls} polls so far{late}")
            ask_now = False
            answer = await self._query(channel)
            if answer is None:
                continue  # the query API did not answer: the next poll or the callback will tell
            if answer.status != "MISSING":
                view = answer
            elif refusal is not None:
                return await self._failed(f"{channel} refused the refund ({refusal}) and has no record of it")
            elif view is None:
                # The request timed out and the channel never got it: ask again, the number makes it safe.
                view, refusal = await self._create(channel, deadline)
                ask_now = view is None
            # else: the channel accepted the refund and its query lags behind; keep asking.
        if view.status == "SUCCESS":
            await self._note("channel", "SUCCEEDED", f"refunded by {channel}")
            return None
        return await self._failed(view.failure_reason or f"{channel} answered {view.status}")

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

    async def _heard(self, seconds: float) -> tuple[bool, ChannelRefundView | None]:
        """(whether a callback came within `seconds`, the definite result it carried if any)."""
        if not await wait_until(lambda: bool(self._inbox), seconds):
            return False, None
        n = self._inbox.pop(0)
        if n.out_refund_no == self._inp.refund_no and n.status in DEFINITE:
            return True, ChannelRefundView(status=n.status, failure_reason=n.failure_reason)
        return True, None

    async def _channel_refunds_meanwhile(
        self, channel: str, decided: Callable[[], bool], remind: Callable[[int], None]
    ) -> bool:
        """While finance decides on a manual transfer: True as soon as the channel reports the refund made
        after all (callback or poll), False once `decided()`. `remind(n)` is called every reminder period."""
        inp = self._inp
        polls = 0
        reminders = 0
        next_reminder = workflow.now() + timedelta(seconds=inp.terms.approval_remind_seconds)
        while not decided():
            until_reminder = (next_reminder - workflow.now()).total_seconds()
            wait = min(poll_delay(inp.terms.poll_initial_seconds, MAX_POLL_INTERVAL_SECONDS, polls), until_reminder)
            if await wait_until(lambda: decided() or bool(self._inbox), max(wait, 0.001)):
                while self._inbox:
                    n = self._inbox.pop(0)
                    if n.out_refund_no == inp.refund_no and n.status == "SUCCESS":
                        return True
                continue
            if workflow.now() >= next_reminder:
                reminders += 1
                remind(reminders)
                next_reminder = workflow.now() + timedelta(seconds=inp.terms.approval_remind_seconds)
                continue
            polls += 1
            answer = await self._query(channel)
            if answer is not None and answer.status == "SUCCESS":
                return True
        return False
