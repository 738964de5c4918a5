"""What every benchmark needs: bounded-concurrency runs, percentiles, the shape of a lifecycle."""

from __future__ import annotations

import asyncio
import math
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import TypeVar

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
