"""`python -m ops bench orders`: happy-path order lifecycles per second through the whole stack, and
the same count of bare Temporal workflows of the same shape, on servers this command starts and stops.

The shape (activities, signals, updates, fired timers) is counted from the recorded histories of a
warm-up order, so the baseline follows the flows as they change instead of a number kept by hand.
"""

from __future__ import annotations

import asyncio
import json
import sys
from collections import Counter
from dataclasses import dataclass

import httpx
from temporalio.api.enums.v1 import EventType
from temporalio.client import Client

from db.api_keys import issue_key
from db.demo import create_active_merchant, seed_providers
from db.engine import make_engine, make_session_factory, unit_of_work
from domain.access import Role
from domain.settings import Settings
from ops.bench.baseline import BareRun, run_bare
from ops.bench.common import Shape, client_limits, percentile, run_pool
from ops.bench.cpu import CpuMeter, cpu_lines
from ops.bench.lifecycle import Lifecycle, Merchant, Shopper
from ops.bench.observability import off_and_on
from ops.bench.servers import OwnStack, failed, own_stack, say
from ops.stack import Services
from workflows.client.connection import connect
from workflows.ids import order_workflow_id, payment_workflow_id

# The marker a local activity's result is recorded with (the SDK core's name for it).
LOCAL_ACTIVITY_MARKER = "core_local_activity"

# Waits the benchmark must sit through are as short as the settings allow; deadlines stay long so
# that nothing times out under load and every lifecycle is the happy path.
BENCH_ENV = {
    "BACKOFFICE_AFTER_SALE_WINDOW_SECONDS": "1",
    "BACKOFFICE_PAYMENT_POLL_INITIAL_SECONDS": "1",
    "BACKOFFICE_PAYMENT_POLL_MAX_SECONDS": "2",
    "SANDBOX_RETRY_BASE_MS": "200",
    "BACKOFFICE_PAYMENT_TIMEOUT_SECONDS": "300",
    "BACKOFFICE_MERCHANT_ACCEPT_TIMEOUT_SECONDS": "300",
    "BACKOFFICE_DISPATCH_ACCEPT_TIMEOUT_SECONDS": "60",
    "BACKOFFICE_AUTO_CONFIRM_SECONDS": "300",
}


@dataclass(frozen=True)
class Report:
    count: int
    concurrency: int
    shape: Shape
    warm_up: Lifecycle
    lifecycles: list[Lifecycle]
    orders_wall_s: float
    bare: BareRun
    bare_tasks: BareRun | None
    """The bare lifecycles again with every step an activity task; None when the flows have no local
    activities (it would be the same run)."""
    cpu: dict[str, float]
    """CPU seconds of each process while the lifecycles ran (ops/bench/cpu.py)."""
    bare_cpu: dict[str, float]
    """CPU seconds of Temporal and of this process (the bare worker and its clients) while the bare
    lifecycles ran: what the same shape costs without the product around it."""

    @property
    def orders_per_s(self) -> float:
        return len(self.lifecycles) / self.orders_wall_s

    def summary(self) -> dict[str, object]:
        creates = [lc.create_ms for lc in self.lifecycles]
        return {
            "orders_per_s": round(self.orders_per_s, 2),
            "bare_per_s": round(self.bare.per_second, 2),
            "ratio_vs_bare": round(self.orders_per_s / self.bare.per_second, 3),
            **(
                {
                    "bare_tasks_per_s": round(self.bare_tasks.per_second, 2),
                    "ratio_vs_bare_tasks": round(self.orders_per_s / self.bare_tasks.per_second, 3),
                }
                if self.bare_tasks
                else {}
            ),
            "create_p50_ms": round(percentile(creates, 50), 1),
            "create_p99_ms": round(percentile(creates, 99), 1),
            "count": self.count,
            "concurrency": self.concurrency,
            "activities_per_order": self.shape.activities,
            "local_activities_per_order": self.shape.local_activities,
            "signals_per_order": self.shape.signals,
            "updates_per_order": self.shape.updates,
            "timer_seconds_per_order": self.shape.timer_seconds,
            "lifecycle_p50_s": round(percentile([lc.total_s for lc in self.lifecycles], 50), 3),
            "lifecycle_p99_s": round(percentile([lc.total_s for lc in self.lifecycles], 99), 3),
            "bare_lifecycle_p50_s": round(percentile(self.bare.latencies, 50), 3),
            "bare_lifecycle_p99_s": round(percentile(self.bare.latencies, 99), 3),
            "step_p50_ms": self.step_p50_ms(),
            "cpu_ms_per_order": {k: round(v / self.count * 1000, 1) for k, v in self.cpu.items()},
            "bare_cpu_ms_per_order": {k: round(v / self.count * 1000, 1) for k, v in self.bare_cpu.items()},
        }

    def step_p50_ms(self) -> dict[str, float]:
        return {
            step: round(percentile([lc.steps[step] for lc in self.lifecycles], 50) * 1000, 1)
            for step in self.warm_up.steps
        }


def run(count: int, concurrency: int, observability: bool = False) -> int:
    if count < 1 or concurrency < 1:
        print("--count and --concurrency must be at least 1", file=sys.stderr)
        return 2
    try:
        with own_stack("bench-orders-", BENCH_ENV) as stack:
            report = asyncio.run(_bench(stack, count, concurrency))
            cost = (
                asyncio.run(_observability(stack.database_url, stack.services, count, concurrency))
                if observability
                else None
            )
        _print(report)
        if cost is not None:
            print(
                f"observability: {cost['observability_on_per_s']}/s on against {cost['observability_off_per_s']}/s off"
            )
            print(json.dumps(cost), flush=True)
        return 0
    except (KeyboardInterrupt, Exception) as exc:
        return failed(exc)


async def _bench(stack: OwnStack, count: int, concurrency: int) -> Report:
    database_url, services = stack.database_url, stack.services
    client = await connect(Settings(), stack.temporal_address)
    service_key, merchants = await seed_stack(
        database_url, merchants=min(concurrency, count), providers=concurrency + 5
    )
    limits = client_limits(concurrency * 2, concurrency * 2)
    async with (
        httpx.AsyncClient(base_url=services.api_url, timeout=60, limits=limits) as api,
        httpx.AsyncClient(timeout=60, limits=limits) as outside,
    ):
        shopper = Shopper(api, outside, client, service_key, merchants)
        say("warm-up order, whose histories give the shape of a lifecycle")
        warm_up = await shopper.lifecycle(-1)
        shape = await _shape_of(client, warm_up)
        say(
            f"one order = {shape.activities} activities, {shape.local_activities} local activities, "
            f"{shape.signals} signals, {shape.updates} updates, "
            f"{shape.child_workflows} child workflow(s), {shape.timer_seconds:g}s of fired timers"
        )
        say(f"{count} order lifecycles, {concurrency} at a time")
        meter = CpuMeter(stack.pids)
        meter.start()
        lifecycles, wall = await run_pool(count, concurrency, shopper.lifecycle)
        cpu = meter.stop()
    say(f"{count} bare lifecycles of the same shape, {concurrency} at a time, worker in this process")
    bare_meter = CpuMeter({"temporal": stack.pids["temporal"]})
    bare_meter.start()
    bare = await run_bare(client, shape, count, concurrency)
    bare_cpu = bare_meter.stop()
    bare_tasks = None
    if shape.local_activities:
        say(f"{count} bare lifecycles again, every step an activity task")
        bare_tasks = await run_bare(client, shape.as_tasks(), count, concurrency)
    return Report(count, concurrency, shape, warm_up, lifecycles, wall, bare, bare_tasks, cpu, bare_cpu)


async def _observability(database_url: str, services: Services, count: int, concurrency: int) -> dict[str, float]:
    service_key, merchants = await seed_stack(
        database_url, merchants=min(concurrency, count), providers=concurrency + 5
    )
    client = await connect(Settings(), services.env["TEMPORAL_ADDRESS"])
    limits = client_limits(concurrency * 2, concurrency * 2)
    async with (
        httpx.AsyncClient(base_url=services.api_url, timeout=60, limits=limits) as api,
        httpx.AsyncClient(timeout=60, limits=limits) as outside,
    ):
        shopper = Shopper(api, outside, client, service_key, merchants)
        say(f"{count} order lifecycles with metrics and tracing off, then {count} with them on")
        return await off_and_on(services, count, concurrency, shopper.lifecycle)


async def seed_stack(database_url: str, *, merchants: int, providers: int) -> tuple[str, list[Merchant]]:
    """A service key, ACTIVE merchants with their keys, and providers enough that dispatch never starves.

    Orders are spread over several merchants because every capture posts to the merchant's balance
    rows: one merchant would measure lock waits on a single row rather than the flow."""
    engine = make_engine(database_url, pool_size=1)
    try:
        async with unit_of_work(make_session_factory(engine)) as session:
            _, service_key = await issue_key(session, role=Role.SERVICE, name="bench-service")
            made: list[Merchant] = []
            for i in range(merchants):
                merchant_id = await create_active_merchant(session, name=f"Bench merchant {i + 1}", category="home")
                _, key = await issue_key(session, role=Role.MERCHANT, name=merchant_id, merchant_id=merchant_id)
                made.append(Merchant(merchant_id, key))
            await seed_providers(session, providers, prefix="bench-prov")
    finally:
        await engine.dispose()
    return service_key, made


async def _shape_of(client: Client, lifecycle: Lifecycle) -> Shape:
    kinds: Counter[int] = Counter()
    timer_seconds = 0.0
    local = 0
    for workflow_id in (order_workflow_id(lifecycle.order_no), payment_workflow_id(lifecycle.payment_no)):
        history = await client.get_workflow_handle(workflow_id).fetch_history()
        started = {e.event_id: e for e in history.events if e.event_type == EventType.EVENT_TYPE_TIMER_STARTED}
        for event in history.events:
            kinds[event.event_type] += 1
            local += event.marker_recorded_event_attributes.marker_name == LOCAL_ACTIVITY_MARKER
            if event.event_type == EventType.EVENT_TYPE_TIMER_FIRED:
                timer = started[event.timer_fired_event_attributes.started_event_id]
                timeout = timer.timer_started_event_attributes.start_to_fire_timeout
                timer_seconds += timeout.ToTimedelta().total_seconds()
    return Shape(
        activities=kinds[EventType.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED],
        signals=kinds[EventType.EVENT_TYPE_WORKFLOW_EXECUTION_SIGNALED],
        updates=kinds[EventType.EVENT_TYPE_WORKFLOW_EXECUTION_UPDATE_ACCEPTED],
        timer_seconds=timer_seconds,
        child_workflows=kinds[EventType.EVENT_TYPE_START_CHILD_WORKFLOW_EXECUTION_INITIATED],
        local_activities=local,
    )


def _print(report: Report) -> None:
    s = report.summary()
    print()
    took = f"{report.count} in {report.orders_wall_s:.1f}s, {report.concurrency} at a time"
    print(f"orders:   {s['orders_per_s']}/s  ({took})")
    print(f"          lifecycle p50 {s['lifecycle_p50_s']}s, p99 {s['lifecycle_p99_s']}s")
    print(f"          POST /v1/orders p50 {s['create_p50_ms']} ms, p99 {s['create_p99_ms']} ms")
    print(f"bare:     {s['bare_per_s']}/s  ({report.bare.completed} in {report.bare.wall_seconds:.1f}s)")
    print(f"          lifecycle p50 {s['bare_lifecycle_p50_s']}s, p99 {s['bare_lifecycle_p99_s']}s")
    if report.bare_tasks:
        tasks = report.bare_tasks
        print(f"bare, all activity tasks: {s['bare_tasks_per_s']}/s  ({tasks.completed} in {tasks.wall_seconds:.1f}s)")
    print(f"ratio:    {s['ratio_vs_bare']} of bare Temporal (local activities where the flows have them)")
    if report.bare_tasks:
        print(f"          {s['ratio_vs_bare_tasks']} of bare Temporal with every step an activity task")
    # Alone (the warm-up) against loaded: a step that only grows under load is queueing for something.
    print("steps:    p50 ms under load (the warm-up order alone)")
    for step, loaded in report.step_p50_ms().items():
        print(f"          {step:<18} {loaded:>8.1f}  ({report.warm_up.steps[step] * 1000:.1f})")
    for line in cpu_lines(report.cpu, report.count):
        print(line)
    print("bare " + cpu_lines(report.bare_cpu, report.count)[0])
    print(json.dumps(s), flush=True)
