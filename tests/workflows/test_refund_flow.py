"""RefundWorkflow on its own: refusal at opening, the channel's answers, escalation to finance with its
validators, the channel's late success, and the manual transfer's one completion."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from typing import Any

from temporalio import activity
from temporalio.client import Client, WorkflowHandle, WorkflowUpdateFailedError
from temporalio.exceptions import ApplicationError
from temporalio.service import RPCError

from activities.refusals import refuse
from domain.refunds import (
    ChannelRefundRequest,
    ChannelRefundView,
    ManualApproval,
    OpenedRefund,
    RefundAttemptRecord,
    RefundCompletion,
    RefundEscalation,
    RefundInput,
    RefundOpened,
    RefundOrigin,
    RefundResult,
    RefundStatus,
    RefundTerms,
)
from domain.refusals import Refusal
from tests.workflows.conftest import Flow, at_stage, eventually, refusal_of, stage_of
from workflows.ids import refund_workflow_id
from workflows.refund import RefundWorkflow

REQUESTER_KEY = 7


@dataclass
class Channel:
    """The refund's story at the channel, as the doubles tell it."""

    open_refusal: Refusal | None = None
    create: str | Refusal = "PROCESSING"  # a status the channel answers, or the refusal it raises
    queries: list[str] = field(default_factory=list)  # answers to polls, in order; the last one repeats
    calls: list[tuple[str, Any]] = field(default_factory=list)

    def names(self) -> list[str]:
        return [name for name, _ in self.calls]

    def attempts(self) -> list[tuple[str, str]]:
        return [(a.kind, a.status) for name, a in self.calls if name == "refunds.record_attempt"]

    def doubles(self) -> list[Any]:
        @activity.defn(name="refunds.open")
        async def open_(inp: RefundInput) -> OpenedRefund:
            self.calls.append(("refunds.open", inp))
            if self.open_refusal is not None:
                raise refuse(self.open_refusal, f"refused by the test: {self.open_refusal}")
            return OpenedRefund(status=RefundStatus.PROCESSING, channel="wechat", currency="CNY", merchant_id="m-1")

        @activity.defn(name="refunds.record_attempt")
        async def record_attempt(a: RefundAttemptRecord) -> None:
            self.calls.append(("refunds.record_attempt", a))

        @activity.defn(name="refunds.escalate")
        async def escalate(e: RefundEscalation) -> None:
            self.calls.append(("refunds.escalate", e))

        @activity.defn(name="refunds.complete")
        async def complete(c: RefundCompletion) -> None:
            self.calls.append(("refunds.complete", c))

        @activity.defn(name="channel.create_refund")
        async def create_refund(req: ChannelRefundRequest) -> ChannelRefundView:
            self.calls.append(("channel.create_refund", req))
            if isinstance(self.create, Refusal):
                raise ApplicationError(f"channel refused: {self.create}", type=self.create.value, non_retryable=True)
            return ChannelRefundView(status=self.create, failure_reason="account closed")

        @activity.defn(name="channel.query_refund")
        async def query_refund(channel: str, refund_no: str) -> ChannelRefundView:
            self.calls.append(("channel.query_refund", refund_no))
            status = self.queries.pop(0) if len(self.queries) > 1 else (self.queries or ["PROCESSING"])[0]
            return ChannelRefundView(status=status)

        return [open_, record_attempt, escalate, complete, create_refund, query_refund]


def refund_input(refund_no: str, *, poll_max_seconds: int = 30, remind_seconds: int = 30) -> RefundInput:
    return RefundInput(
        refund_no=refund_no,
        order_no=f"ORD-{refund_no}",
        payment_no=f"PAY-{refund_no}",
        amount_minor=1_000,
        reason="test",
        origin=RefundOrigin.API,
        requested_by="alice",
        requested_by_key_id=REQUESTER_KEY,
        terms=RefundTerms(
            poll_initial_seconds=1,
            poll_max_seconds=poll_max_seconds,
            approval_remind_seconds=remind_seconds,
            notify_url="http://callbacks.invalid/v1/callbacks",
            manual_bank="test-bank",
        ),
    )


async def start(client: Client, flow: Flow, inp: RefundInput) -> tuple[WorkflowHandle[Any, RefundResult], RefundOpened]:
    """Open the refund as the API does (update-with-start): the caller hears at once whether it was taken."""
    workflow_id = refund_workflow_id(inp.refund_no)
    opened = await flow.start_and_ask(RefundWorkflow.run, inp, workflow_id, RefundWorkflow.opened)
    return client.get_workflow_handle_for(RefundWorkflow.run, workflow_id), opened


async def test_a_refusal_at_opening_reaches_the_caller_unchanged_and_nothing_is_asked_of_the_channel(
    temporal: Client,
) -> None:
    channel = Channel(open_refusal=Refusal.REFUND_EXCEEDS_REFUNDABLE)
    flow = Flow(temporal, RefundWorkflow, channel.doubles())
    inp = refund_input(flow.workflow_id("rf"))
    async with flow.worker:
        assert await refusal_of(start(temporal, flow, inp)) == Refusal.REFUND_EXCEEDS_REFUNDABLE
        result = await temporal.get_workflow_handle_for(RefundWorkflow.run, refund_workflow_id(inp.refund_no)).result()
    assert result.status is RefundStatus.FAILED and "refused by the test" in (result.failure_reason or "")
    assert channel.names() == ["refunds.open"]


async def test_a_refund_the_channel_makes_completes_without_finance(temporal: Client) -> None:
    channel = Channel(create="PROCESSING", queries=["PROCESSING", "SUCCESS"])
    flow = Flow(temporal, RefundWorkflow, channel.doubles())
    inp = refund_input(flow.workflow_id("rf"))
    async with flow.worker:
        handle, opened = await start(temporal, flow, inp)
        assert opened.status is RefundStatus.PROCESSING
        result = await handle.result()
    assert result.status is RefundStatus.SUCCEEDED
    assert "refunds.escalate" not in channel.names()
    assert channel.names().count("channel.query_refund") == 2
    assert [c for n, c in channel.calls if n == "refunds.complete"] == [RefundCompletion(refund_no=inp.refund_no)]


async def test_a_rejected_request_the_channel_has_no_record_of_escalates_and_finance_pays_it_once(
    temporal: Client,
) -> None:
    channel = Channel(create=Refusal.CHANNEL_REJECTED, queries=["MISSING"])
    flow = Flow(temporal, RefundWorkflow, channel.doubles())
    inp = refund_input(flow.workflow_id("rf"))
    async with flow.worker:
        handle, _ = await start(temporal, flow, inp)
        await eventually(lambda: at_stage(handle, "AWAITING_FINANCE_APPROVAL"))
        # Maker-checker: the requester cannot approve the transfer of its own refund.
        same = ManualApproval(approver="alice again", approver_key_id=REQUESTER_KEY)
        assert await refusal_of(handle.execute_update(RefundWorkflow.approve_manual, same)) == Refusal.SAME_PERSON
        # Two finance people approve at once: one transfer is made, the other approval is refused
        # (by the validator, or by the server if the flow has already finished).
        answers = await asyncio.gather(
            handle.execute_update(RefundWorkflow.approve_manual, ManualApproval(approver="bob", approver_key_id=8)),
            handle.execute_update(RefundWorkflow.approve_manual, ManualApproval(approver="carol", approver_key_id=9)),
            return_exceptions=True,
        )
        paid = [a for a in answers if isinstance(a, RefundResult)]
        assert len(paid) == 1 and paid[0].status is RefundStatus.MANUAL_PAID, answers
        other = next(a for a in answers if not isinstance(a, RefundResult))
        assert isinstance(other, RPCError) or (
            isinstance(other, WorkflowUpdateFailedError)
            and isinstance(other.cause, ApplicationError)
            and other.cause.type == Refusal.NOT_AWAITING_APPROVAL
        ), other
        result = await handle.result()
    assert result.status is RefundStatus.MANUAL_PAID and "has no record of it" in (result.failure_reason or "")
    completions = [c for n, c in channel.calls if n == "refunds.complete"]
    assert len(completions) == 1 and completions[0].manual and completions[0].approved_by in ("bob", "carol")
    assert channel.names().count("refunds.escalate") == 1
    assert ("manual", "APPROVED") in channel.attempts()


async def test_a_refund_still_processing_past_the_poll_window_is_not_failed(temporal: Client) -> None:
    # Unknown is not failed: past the window the flow keeps asking and never hands the refund to finance.
    channel = Channel(create="PROCESSING", queries=["PROCESSING"])
    flow = Flow(temporal, RefundWorkflow, channel.doubles())
    inp = refund_input(flow.workflow_id("rf"), poll_max_seconds=2)
    async with flow.worker:
        handle, _ = await start(temporal, flow, inp)
        await eventually(lambda: _polled(channel, 3), within=15)
        assert await stage_of(handle) == "PROCESSING"
        assert "refunds.escalate" not in channel.names()
        await channel_made_it(handle, inp.refund_no)  # the callback, not a poll: the channel still says PROCESSING
        result = await handle.result()
    assert result.status is RefundStatus.SUCCEEDED


async def test_the_channel_succeeding_while_finance_decides_cancels_the_manual_transfer(temporal: Client) -> None:
    channel = Channel(create="FAILED", queries=["FAILED"])
    flow = Flow(temporal, RefundWorkflow, channel.doubles())
    inp = refund_input(flow.workflow_id("rf"), remind_seconds=1)
    async with flow.worker:
        handle, _ = await start(temporal, flow, inp)
        await eventually(lambda: at_stage(handle, "AWAITING_FINANCE_APPROVAL"))
        await channel_made_it(handle, inp.refund_no)
        result = await handle.result()
    assert result.status is RefundStatus.SUCCEEDED
    assert ("manual", "CANCELLED") in channel.attempts()
    completions = [c for n, c in channel.calls if n == "refunds.complete"]
    assert len(completions) == 1 and not completions[0].manual


async def channel_made_it(handle: Any, refund_no: str) -> None:
    """The channel's signed callback, as the API signals it to the flow: the refund was made."""
    notification = {"event_id": f"e-{refund_no}", "event_type": "REFUND", "out_refund_no": refund_no}
    await handle.signal(RefundWorkflow.notification, {**notification, "status": "SUCCESS"})


async def _polled(channel: Channel, times: int) -> bool:
    return channel.names().count("channel.query_refund") >= times
