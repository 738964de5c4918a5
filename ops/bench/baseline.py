"""The bare baseline: a workflow that does nothing but cost Temporal what an order lifecycle costs it.

It runs the same number of activities (no-ops, one after another; local ones where the flows run local
activities), takes the same number of signals
and updates from a client, and sleeps as long as the real flow's fired timers, in a worker inside the
benchmark process on a task queue of its own, against the same server as the real run.
"""

from __future__ import annotations

import time
import uuid
from dataclasses import dataclass
from datetime import timedelta

from temporalio import activity, workflow
from temporalio.client import Client, WithStartWorkflowOperation
from temporalio.common import WorkflowIDConflictPolicy
from temporalio.worker import Worker

with workflow.unsafe.imports_passed_through():
    from ops.bench.common import Shape, run_pool

UPDATE = "step"
SIGNAL = "poke"


@activity.defn(name="bench.noop")
async def noop() -> None:
    """Stands in for one of the real flow's activities without touching anything."""


def activities_due(shape: Shape, received: int) -> int:
    """How many activities must have run once `received` messages have come in.

    The activities are spread evenly over the gaps before, between and after the messages, the way the
    real flow does a write or two in answer to each message, so each update's answer waits for work."""
    return (received + 1) * shape.steps // (shape.signals + shape.updates + 1)


@workflow.defn(name="BenchBareLifecycle")
class BareLifecycle:
    @workflow.init
    def __init__(self, shape: Shape) -> None:
        # Taken here, not in run(): with update-with-start the first update may be handled before run starts.
        self._shape = shape
        self._received = 0
        self._done = 0

    @workflow.signal(name=SIGNAL)
    def poke(self) -> None:
        self._received += 1

    @workflow.update(name=UPDATE)
    async def step(self) -> int:
        self._received += 1
        due = activities_due(self._shape, self._received)
        # Answer once the work this message unlocked is done, as the order flow's updates answer only
        # after the database shows their effect.
        await workflow.wait_condition(lambda: self._done >= due)
        return self._done

    @workflow.run
    async def run(self, shape: Shape) -> int:
        for step in range(shape.steps):
            await workflow.wait_condition(lambda: activities_due(shape, self._received) > self._done)
            if shape.is_local(step):
                await workflow.execute_local_activity(noop, start_to_close_timeout=timedelta(seconds=30))
            else:
                await workflow.execute_activity(noop, start_to_close_timeout=timedelta(seconds=30))
            self._done += 1
        if shape.timer_seconds > 0:
            await workflow.sleep(timedelta(seconds=shape.timer_seconds))
        await workflow.wait_condition(workflow.all_handlers_finished)
        return self._done


@dataclass(frozen=True)
class BareRun:
    completed: int
    wall_seconds: float
    latencies: list[float]

    @property
    def per_second(self) -> float:
        return self.completed / self.wall_seconds


async def _one(client: Client, task_queue: str, shape: Shape) -> float:
    """One bare lifecycle driven the way the API drives an order: update-with-start, then the rest."""
    started = time.perf_counter()
    start = WithStartWorkflowOperation(
        BareLifecycle.run,
        shape,
        id=f"bench-bare-{uuid.uuid4().hex}",
        task_queue=task_queue,
        id_conflict_policy=WorkflowIDConflictPolicy.FAIL,
    )
    await client.execute_update_with_start_workflow(UPDATE, start_workflow_operation=start, result_type=int)
    handle = await start.workflow_handle()
    for _ in range(shape.signals):
        await handle.signal(SIGNAL)
    for _ in range(shape.updates - 1):
        await handle.execute_update(UPDATE, result_type=int)
    done = await handle.result()
    if done != shape.steps:
        raise RuntimeError(f"bare workflow {handle.id} ran {done} activities, not {shape.steps}")
    return time.perf_counter() - started


async def run_bare(client: Client, shape: Shape, count: int, concurrency: int) -> BareRun:
    if shape.updates < 1:
        raise ValueError("the baseline starts with an update, as order placement does: it needs one at least")
    task_queue = f"bench-bare-{uuid.uuid4().hex[:8]}"
    # Worker defaults, like `python -m workers`: a tuned baseline would flatter the ratio's other side.
    async with Worker(client, task_queue=task_queue, workflows=[BareLifecycle], activities=[noop]):
        await _one(client, task_queue, shape)  # warm-up: worker pollers, workflow cache, sandbox import
        latencies, wall = await run_pool(count, concurrency, lambda _: _one(client, task_queue, shape))
    return BareRun(completed=len(latencies), wall_seconds=wall, latencies=latencies)
