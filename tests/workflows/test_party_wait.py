"""PartyWait on its own (workflows/awaiting.py), the one wait every flow uses for an outside party: in a
probe workflow on a real dev server, what it answers and when, in seconds of workflow time."""

from __future__ import annotations

import asyncio
import uuid
from datetime import timedelta

from pydantic import BaseModel
from temporalio import workflow
from temporalio.client import Client
from temporalio.worker import UnsandboxedWorkflowRunner, Worker

from domain.payments import poll_delay
from workflows.awaiting import PartyWait, Woke


class Probe(BaseModel):
    deadline_seconds: int
    longest_poll_seconds: int
    first_poll_seconds: int = 1
    ask_at_deadline: bool = True
    window: bool = False
    floor: float = 0.0
    events: int = 10  # stop after this many answers


@workflow.defn(name="PartyWaitProbe")
class PartyWaitProbe:
    def __init__(self) -> None:
        self._inbox: list[str] = []
        self._log: list[str] = []

    @workflow.signal(name="callback")
    def callback(self) -> None:
        self._inbox.append("callback")

    @workflow.query(name="log")
    def log(self) -> list[str]:
        return self._log

    @workflow.run
    async def run(self, p: Probe) -> list[str]:
        start = workflow.now()
        waiting = PartyWait(
            lambda: bool(self._inbox),
            lambda polls: poll_delay(p.first_poll_seconds, p.longest_poll_seconds, polls),
            deadline=start + timedelta(seconds=p.deadline_seconds),
            ask_at_deadline=p.ask_at_deadline,
            window=p.window,
            floor=p.floor,
        )
        while len(self._log) < p.events:
            woke = await waiting.next()
            if woke is Woke.HEARD:
                self._inbox.pop(0)
            at = round((workflow.now() - start).total_seconds())
            self._log.append(f"{woke.value}@{at} polls={waiting.polls}")
            if woke is Woke.OVER and not p.window:
                break
        return self._log


async def probe(client: Client, p: Probe, *, callback_after: float | None = None) -> list[str]:
    queue = f"wf-test-{uuid.uuid4().hex[:8]}"
    async with Worker(
        client,
        task_queue=queue,
        workflows=[PartyWaitProbe],
        workflow_runner=UnsandboxedWorkflowRunner(),
        max_cached_workflows=0,
    ):
        handle = await client.start_workflow(
            PartyWaitProbe.run, p, id=f"probe-{uuid.uuid4().hex[:10]}", task_queue=queue
        )
        if callback_after is not None:
            await asyncio.sleep(callback_after)  # the callback must come while the probe waits
            await handle.signal(PartyWaitProbe.callback)
        return await handle.result()


async def test_polls_back_off_and_the_deadline_ends_the_wait(temporal: Client) -> None:
    # Waits of 1, 2, then 2 (capped by the deadline at 5 s); the wait that ran out at the deadline still
    # asks the party once, then the wait is over.
    log = await probe(temporal, Probe(deadline_seconds=5, longest_poll_seconds=2))
    assert log == ["poll@1 polls=1", "poll@3 polls=2", "poll@5 polls=3", "over@5 polls=3"]


async def test_a_flow_that_does_not_ask_at_the_deadline_hears_over_instead(temporal: Client) -> None:
    log = await probe(temporal, Probe(deadline_seconds=5, longest_poll_seconds=2, ask_at_deadline=False))
    assert log == ["poll@1 polls=1", "poll@3 polls=2", "over@5 polls=2"]


async def test_a_callback_wakes_the_wait_without_counting_a_poll(temporal: Client) -> None:
    log = await probe(
        temporal, Probe(deadline_seconds=60, first_poll_seconds=30, longest_poll_seconds=30, events=1), callback_after=1
    )
    assert log == ["heard@1 polls=0"]


async def test_past_a_poll_window_the_wait_goes_on_polling(temporal: Client) -> None:
    # Window of 2 s: waits of 1, then 1 (capped by the window), then the back-off uncapped (4 s).
    log = await probe(temporal, Probe(deadline_seconds=2, longest_poll_seconds=4, window=True, events=3))
    assert log == ["poll@1 polls=1", "poll@2 polls=2", "poll@6 polls=3"]
