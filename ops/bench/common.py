"""What every benchmark needs: bounded-concurrency runs, percentiles, the shape of a lifecycle."""

from __future__ import annotations

import asyncio
import math
import time
from collections import defaultdict
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, replace
from typing import TypeVar

import httpx
from temporalio.api.enums.v1 import EventType

from domain.settings import Settings
from workflows.client.connection import connect

T = TypeVar("T")


@dataclass(frozen=True)
class Shape:
    """What one lifecycle costs Temporal, as counted in the recorded histories of a real run."""

    activities: int
    signals: int
    updates: int
    timer_seconds: float
    """Durable timers that actually fired (business waits such as the after-sale window): the bare
    workflow sleeps as long, so the ratio measures overhead rather than waits both sides must sit out."""
    child_workflows: int = 0
    local_activities: int = 0
    """Activities the flows run as local activities (recorded as markers): the bare workflow runs as
    many local no-ops, so that neither side is charged for activity tasks the other does not have."""

    @property
    def steps(self) -> int:
        """Activities of either kind."""
        return self.activities + self.local_activities

    def as_tasks(self) -> Shape:
        """The same steps, every one an activity task (what the flows cost Temporal before any step ran
        as a local activity)."""
        return replace(self, activities=self.steps, local_activities=0)

    def is_local(self, step: int) -> bool:
        """Whether the bare workflow's step `step` (0-based) is a local one: spread evenly over the steps."""
        return (step + 1) * self.local_activities // self.steps > step * self.local_activities // self.steps


def client_limits(connections: int | None, keepalive: int) -> httpx.Limits:
    """Connection limits for a benchmark's HTTP clients. An idle connection is dropped well before the
    servers' keep-alive timeout (uvicorn's is 5 s, httpx's default expiry too): otherwise a request sent
    on a connection the server is closing at that moment fails with no answer, which is the benchmark's
    fault, not the server's."""
    return httpx.Limits(max_connections=connections, max_keepalive_connections=keepalive, keepalive_expiry=2.0)


async def run_pool(count: int, concurrency: int, job: Callable[[int], Awaitable[T]]) -> tuple[list[T], float]:
    """Run job(0..count-1) with at most `concurrency` at a time; the results in order and the wall time."""
    results: dict[int, T] = {}
    indexes = iter(range(count))

    async def lane() -> None:
        # One shared iterator: each lane takes the next index as soon as it is free, so a slow job
        # never leaves the other lanes idle the way fixed batches would.
        for i in indexes:
            results[i] = await job(i)

    started = time.perf_counter()
    async with asyncio.TaskGroup() as group:
        for _ in range(min(concurrency, count)):
            group.create_task(lane())
    return [results[i] for i in range(count)], time.perf_counter() - started


def percentile(values: Sequence[float], q: float) -> float:
    """Nearest-rank percentile (q in 0..100): an observed value, which is honest for small samples."""
    if not values:
        return math.nan
    ordered = sorted(values)
    rank = max(1, math.ceil(q / 100 * len(ordered)))
    return ordered[min(rank, len(ordered)) - 1]


async def activity_seconds_of(address: str, workflow_id: str) -> tuple[dict[str, float], int]:
    """Where the cycle's time went: schedule-to-close of each activity type, from the recorded history."""
    client = await connect(Settings(), address)
    history = await client.get_workflow_handle(workflow_id).fetch_history()
    scheduled: dict[int, tuple[str, float]] = {}
    seconds: defaultdict[str, float] = defaultdict(float)
    retried = 0
    for e in history.events:
        at = e.event_time.ToDatetime().timestamp()
        if e.event_type == EventType.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED:
            scheduled[e.event_id] = (e.activity_task_scheduled_event_attributes.activity_type.name, at)
        elif e.event_type == EventType.EVENT_TYPE_ACTIVITY_TASK_STARTED:
            retried += e.activity_task_started_event_attributes.attempt > 1
        elif e.event_type == EventType.EVENT_TYPE_ACTIVITY_TASK_COMPLETED:
            name, since = scheduled[e.activity_task_completed_event_attributes.scheduled_event_id]
            seconds[name] += at - since
    return dict(seconds), retried
