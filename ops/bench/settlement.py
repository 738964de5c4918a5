"""`python -m ops bench settlement`: orders per second through one whole settlement cycle (claim, lines,
statements, verify, auto-approval posting SETTLEMENT per statement, close), against plain SQL writing
the same lines with one `INSERT ... SELECT` in the same database in the same run.

The seeded orders are spread over merchants with deterministic amounts, rates and promoters; seeding is
timed apart. The measurement is from `POST /v1/settlement-runs` until the cycle reads CLOSED.
"""

from __future__ import annotations

import asyncio
import json
import math
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from db.api_keys import issue_key
from db.demo import create_active_merchant, seed_settleable_orders
from db.engine import make_engine, make_session_factory, unit_of_work
from domain.access import Role
from domain.settings import Settings
from ops.bench.common import activity_seconds_of
from ops.bench.cpu import CpuMeter, cpu_lines
from ops.bench.servers import OwnStack, failed, own_stack, say
from ops.bench.settlement_sql import Baseline, run_baseline

# Every statement auto-approves, so the cycle closes by itself and finance never has to step in.
BENCH_ENV = {"BACKOFFICE_SETTLEMENT_AUTO_APPROVE_MAX_MINOR": str(10**15)}
GROUPS = 4  # per merchant: four batches, each its own amount and rate, the last with a promoter
RATES_BPS = (150, 333, 500, 825)
POLL_SECONDS = 0.1


@dataclass(frozen=True)
class Report:
    orders: int
    merchants: int
    page_size: int
    seed_seconds: float
    cycle_seconds: float
    activity_seconds: dict[str, float]
    retried_activities: int
    totals: dict[str, int]
    baseline: Baseline
    worker_peak_rss_mb: float
    cpu: dict[str, float]
    """CPU seconds of each process from POST to CLOSED (ops/bench/cpu.py): unlike seconds, comparable
    between runs on a busy machine."""

    @property
    def orders_per_s(self) -> float:
        return self.orders / self.cycle_seconds

    @property
    def build_pages(self) -> int:
        # The claim runs two loops of pages, from each end of the queue, and each stops on its first short
        # page: every page is full but those two.
        return self.orders // self.page_size + 2

    def summary(self) -> dict[str, object]:
        # Cycles since patch settlement-cycle-v2 claim in `settlement.claim` (aggregation is its own step).
        build = self.activity_seconds.get("settlement.build", self.activity_seconds.get("settlement.claim", math.nan))
        return {
            "orders_per_s": round(self.orders_per_s, 1),
            "baseline_per_s": round(self.baseline.per_second, 1),
            "ratio_vs_baseline": round(self.orders_per_s / self.baseline.per_second, 4),
            "orders": self.orders,
            "merchants": self.merchants,
            "page_size": self.page_size,
            "seed_seconds": round(self.seed_seconds, 2),
            "cycle_seconds": round(self.cycle_seconds, 2),
            "baseline_seconds": round(self.baseline.seconds, 3),
            "build_pages": self.build_pages,
            "build_page_ms": round(build / self.build_pages * 1000, 1),
            "activity_seconds": {k: round(v, 3) for k, v in self.activity_seconds.items()},
            "retried_activities": self.retried_activities,
            "worker_peak_rss_mb": round(self.worker_peak_rss_mb, 1),
            "cpu_seconds": {k: round(v, 2) for k, v in self.cpu.items()},
            "baseline_pg_cpu_seconds": round(self.baseline.pg_cpu_seconds, 3),
            # The ratio again in PostgreSQL's CPU seconds (the baseline's one statement against the cycle's),
            # which load on the machine does not move as it moves wall time.
            "pg_cpu_ratio_vs_baseline": round(self.baseline.pg_cpu_seconds / self.cpu["postgres"], 4),
            "baseline_statements_differing": self.baseline.statements_differing,
            "baseline_lines_differing": self.baseline.lines_differing,
        }


def run(orders: int, merchants: int) -> int:
    if orders < 1 or not 1 <= merchants <= orders:
        print("--orders must be at least 1 and --merchants between 1 and --orders", file=sys.stderr)
        return 2
    try:
        with own_stack("bench-settlement-", BENCH_ENV) as stack:
            report = asyncio.run(_bench(stack, orders, merchants))
    except (KeyboardInterrupt, Exception) as exc:
        return failed(exc)
    _print(report)
    # A baseline that disagrees with the cycle means one of the two splits is wrong: not a clean run.
    return 1 if report.baseline.statements_differing or report.baseline.lines_differing else 0


async def _bench(stack: OwnStack, orders: int, merchants: int) -> Report:
    page_size = Settings().settlement_page_size  # the stack inherits our environment, so it uses the same
    engine = make_engine(stack.database_url, pool_size=2)
    try:
        say(f"seeding {orders} settleable orders over {merchants} merchants")
        started = time.perf_counter()
        finance_key = await _seed(engine, orders, merchants)
        seed_seconds = time.perf_counter() - started
        say(f"seeded in {seed_seconds:.1f}s")
        # The default cutoff is "now" rounded up to a whole second: waiting past it keeps the seeding
        # transaction's timestamps safely before the cutoff, off the clock.
        await asyncio.sleep(1.1)
        auth = {"Authorization": f"Bearer {finance_key}"}
        async with httpx.AsyncClient(base_url=stack.services.api_url, timeout=60, headers=auth) as api:
            say(f"settlement cycle over {orders} orders (page size {page_size})")
            meter = CpuMeter(stack.pids)
            meter.start()
            cycle_id, workflow_id, cycle_seconds = await _run_cycle(api, deadline=300 + orders / 100)
            cpu = meter.stop()
            say(f"cycle {cycle_id} closed in {cycle_seconds:.1f}s; verifying")
            totals = await _verify(engine, api, cycle_id, orders, merchants)
        activity_seconds, retried = await activity_seconds_of(stack.temporal_address, workflow_id)
        say("baseline: one INSERT ... SELECT of the same lines into a scratch table")
        baseline = await run_baseline(engine, cycle_id, stack.pids["postgres"])
    finally:
        await engine.dispose()
    return Report(
        orders,
        merchants,
        page_size,
        seed_seconds,
        cycle_seconds,
        activity_seconds,
        retried,
        totals,
        baseline,
        _peak_rss_mb(stack),
        cpu,
    )


def _peak_rss_mb(stack: OwnStack) -> float:
    """The worker's peak resident memory so far (the kernel's high-water mark, VmHWM): a cycle that pages
    through the orders keeps it flat however many orders there are."""
    proc = stack.services.children["worker"].proc
    assert proc is not None
    for line in Path(f"/proc/{proc.pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return math.nan


async def _seed(engine: AsyncEngine, orders: int, merchants: int) -> str:
    """ACTIVE merchants, their orders (a transaction per merchant), and a finance key; returns the key."""
    sessions = make_session_factory(engine)
    async with unit_of_work(sessions) as session:
        _, finance_key = await issue_key(session, role=Role.FINANCE, name="bench-finance")
    for i in range(merchants):
        share = orders // merchants + (1 if i < orders % merchants else 0)
        async with unit_of_work(sessions) as session:
            merchant_id = await create_active_merchant(session, name=f"Bench merchant {i + 1}", category="home")
            for g in range(GROUPS):
                count = share * (g + 1) // GROUPS - share * g // GROUPS
                if count == 0:
                    continue
                promoted = g == GROUPS - 1
                await seed_settleable_orders(
                    session,
                    merchant_id,
                    count,
                    # Odd amounts and rates such as 3.33 %, so half-up rounding is exercised on most lines.
                    amount_minor=990 + (i * 7919 + g * 104_729) % 49_000,
                    commission_bps=RATES_BPS[(i + g) % len(RATES_BPS)],
                    promoter_id=f"bench-prom-{i % 7}" if promoted else None,
                    promoter_bps=50 + 25 * (i % 5) if promoted else 0,
                    prefix="BS",
                )
    async with engine.connect() as conn:
        # Statistics autovacuum would have gathered over a day of trade; a freshly bulk-loaded table has
        # none, and the claim query's plan should be the one production gets.
        await conn.execute(text("ANALYZE orders"))
    return finance_key


async def _run_cycle(api: httpx.AsyncClient, *, deadline: float) -> tuple[str, str, float]:
    started = time.perf_counter()
    r = await api.post("/v1/settlement-runs", json={})
    r.raise_for_status()
    cycle_id, workflow_id = r.json()["cycle_id"], r.json()["workflow_id"]
    last_said = started
    while True:
        r = await api.get(f"/v1/settlement-runs/{cycle_id}")
        now = time.perf_counter()
        if r.status_code != 404:  # 404 until the workflow's first activity has opened the cycle
            r.raise_for_status()
            body: dict[str, Any] = r.json()
            if body["status"] == "CLOSED":
                return cycle_id, workflow_id, now - started
            if body["status"] == "FAILED":
                raise RuntimeError(f"cycle {cycle_id} failed: {body['failure']}")
        if now - started > deadline:
            raise TimeoutError(f"cycle {cycle_id} not CLOSED after {deadline:.0f}s (see the worker's log)")
        if now - last_said > 15:
            say(f"  still running after {now - started:.0f}s")
            last_said = now
        await asyncio.sleep(POLL_SECONDS)


async def _verify(
    engine: AsyncEngine, api: httpx.AsyncClient, cycle_id: str, orders: int, merchants: int
) -> dict[str, int]:
    """Every order settled on exactly one line (of an APPROVED statement, one per merchant), the ledger
    balanced."""
    params = {"c": cycle_id}
    async with engine.connect() as conn:
        statuses: dict[str, int] = dict(
            (
                await conn.execute(
                    text("SELECT status, count(*) FROM settlement_statements WHERE cycle_id = :c GROUP BY status"),
                    params,
                )
            )
            .tuples()
            .all()
        )
        lines = (
            await conn.execute(text("SELECT count(*) FROM settlement_lines WHERE cycle_id = :c"), params)
        ).scalar_one()
        settled = (
            await conn.execute(
                text(
                    "SELECT count(*) FROM settlement_lines l JOIN settlement_statements s ON s.cycle_id = l.cycle_id"
                    " AND s.merchant_id = l.merchant_id AND s.status = 'APPROVED' WHERE l.cycle_id = :c"
                ),
                params,
            )
        ).scalar_one()
        sums = (
            await conn.execute(
                text(
                    "SELECT sum(gross_minor), sum(commission_minor), sum(promoter_minor), sum(net_minor)"
                    " FROM settlement_statements WHERE cycle_id = :c"
                ),
                params,
            )
        ).one()
    problems = []
    if statuses != {"APPROVED": merchants}:
        problems.append(f"statements by status {statuses}, expected {merchants} APPROVED")
    if (lines, settled) != (orders, orders):
        problems.append(f"{lines} lines and {settled} settled orders, expected {orders}")
    balance = (await api.get("/v1/ledger/trial-balance")).raise_for_status().json()
    if not balance["balanced"]:
        problems.append(f"trial balance: {balance['problems'][:5]}")
    if problems:
        raise RuntimeError(f"cycle {cycle_id} is wrong: " + "; ".join(problems))
    return dict(zip(("gross", "commission", "promoter", "net"), (int(s) for s in sums), strict=True))


def _print(report: Report) -> None:
    s = report.summary()
    b = report.baseline
    print()
    print(
        f"cycle:     {s['orders_per_s']} orders/s  ({report.orders} orders, {report.merchants} statements "
        f"in {report.cycle_seconds:.2f}s, POST to CLOSED)"
    )
    print(f"           build {s['build_pages']} pages of {report.page_size}, {s['build_page_ms']} ms a page")
    for name, secs in sorted(report.activity_seconds.items(), key=lambda kv: -kv[1]):
        print(f"           {name:<26} {secs:8.2f}s")
    print(f"baseline:  {s['baseline_per_s']} lines/s  ({b.rows} lines in {b.seconds:.3f}s, one INSERT ... SELECT)")
    print(f"ratio:     {s['ratio_vs_baseline']} of plain SQL")
    t = report.totals
    print(f"totals:    gross {t['gross']}, commission {t['commission']}, promoter {t['promoter']}, net {t['net']}")
    if b.statements_differing or b.lines_differing:
        print(
            f"MISMATCH:  the baseline disagrees with the cycle on {b.statements_differing} statements "
            f"and {b.lines_differing} lines"
        )
    else:
        print("check:     the baseline's lines and per-merchant totals equal the cycle's")
    print(f"worker:    peak memory {s['worker_peak_rss_mb']} MB")
    for line in cpu_lines(report.cpu, report.orders):
        print(line)
    print(f"pg cpu:    baseline {b.pg_cpu_seconds:.2f}s, ratio {s['pg_cpu_ratio_vs_baseline']} of plain SQL")
    print(f"seeding:   {report.seed_seconds:.1f}s (not measured)")
    print(json.dumps(s), flush=True)
