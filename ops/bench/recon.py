"""`python -m ops bench recon --lines N`: one WeChat Pay day of N bill rows reconciled end to end on
servers of its own, against plain SQL doing the least any reconciliation must (COPY the same rows, one
FULL OUTER JOIN against the platform's captures) in the same run.

Not timed: seeding the platform's day (set-based, ops/bench/recon_data.py) and writing the bill, which
the sandbox is then handed as that day's prepared bill. Timed: from `POST /v1/recon/runs` until the run
reads MATCHED: download through the sandbox, keep the file, parse, COPY, match and classify. The
discrepancy flows are not part of it. The run must have found every planted discrepancy and no other
(`found == planted`, `false_positives == 0`), or the bench fails. `peak_rss_mb` is the worker's peak
resident memory (the process that downloads, parses and loads the file).
"""

from __future__ import annotations

import asyncio
import json
import sys
import time
import traceback
from datetime import date
from pathlib import Path
from typing import Any

import httpx
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from db.api_keys import issue_key
from db.engine import make_engine, make_session_factory, unit_of_work
from db.recon import classify_sql
from domain.access import Role
from domain.recon.lines import business_day_bounds
from ops.bench.common import activity_seconds_of
from ops.bench.recon_baseline import run_baseline
from ops.bench.recon_data import RATE_BP, SEED, Plan, bill_lines, seed_params
from ops.bench.servers import OwnStack, own_stack, say
from ops.sandbox.statement_files import write_wechat

DAY = date(2026, 11, 2)
POLL_SECONDS = 0.2


def run(lines: int, explain: bool = False) -> int:
    if lines < 1000:
        print("--lines must be at least 1000 (every discrepancy type is planted)", file=sys.stderr)
        return 2
    try:
        with own_stack("bench-recon-", {}) as stack:
            summary = asyncio.run(_bench(stack, Plan.for_lines(lines, DAY), explain))
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    except Exception as exc:  # any failure: say what; own_stack has said where the logs are
        errors = exc.exceptions if isinstance(exc, ExceptionGroup) else [exc]
        for error in errors[:3]:
            traceback.print_exception(error, file=sys.stderr)
        print(f"bench failed: {errors[0]}", file=sys.stderr)
        return 1
    print(json.dumps(summary), flush=True)
    return 0 if summary["found"] == summary["planted"] and summary["false_positives"] == 0 else 1


async def _bench(stack: OwnStack, plan: Plan, explain: bool) -> dict[str, Any]:
    engine = make_engine(stack.database_url, pool_size=2)
    try:
        say(f"seeding {plan.payments} payments and {plan.refunds} refunds of {plan.day}")
        started = time.perf_counter()
        async with engine.begin() as conn:
            for statement in SEED:
                await conn.execute(text(statement), seed_params(plan))
        async with unit_of_work(make_session_factory(engine)) as session:
            _, key = await issue_key(session, role=Role.FINANCE, name="bench-finance")
        say(f"seeded in {time.perf_counter() - started:.1f}s; writing the bill of {plan.lines} rows")
        started = time.perf_counter()
        bill = stack.root / "bill.csv"
        with bill.open("wb") as out:
            for chunk in write_wechat(bill_lines(plan), "ALL"):
                out.write(chunk)
        say(f"bill written in {time.perf_counter() - started:.1f}s ({bill.stat().st_size / 1e6:.1f} MB)")
        await _prepare(stack, bill)
        async with httpx.AsyncClient(base_url=stack.services.api_url, timeout=60) as api:
            api.headers["Authorization"] = f"Bearer {key}"
            say("reconciling")
            run, seconds = await _reconcile(api, deadline=120 + plan.lines / 2000)
        if run["status"] != "MATCHED":
            raise RuntimeError(f"run {run['run_id']} ended {run['status']}: {run['failure']}")
        say(f"matched in {seconds:.1f}s: {run['counts']}")
        recorded = await _recorded(engine, run["run_id"])
        steps, _ = await activity_seconds_of(stack.temporal_address, f"recon-wechat-{DAY}")
        peak_rss_mb = _peak_rss_mb(stack)
        if explain:
            await _explain(engine, run["run_id"])
        say("baseline: COPY of the same rows and one FULL OUTER JOIN against the captures")
        baseline_seconds = await run_baseline(engine, plan)
    finally:
        await engine.dispose()
    planted = plan.expected()
    missed = sorted(planted - recorded)
    invented = sorted(recorded - planted)
    if missed or invented:
        say(f"missed {missed[:5]}, invented {invented[:5]}")
    return {
        "lines": run["lines"],
        "seconds": round(seconds, 2),
        "lines_per_s": round(run["lines"] / seconds),
        "planted": len(planted),
        "found": len(planted & recorded),
        "false_positives": len(invented),
        "baseline_seconds": round(baseline_seconds, 2),
        "ratio_vs_baseline": round(baseline_seconds / seconds, 3),
        "peak_rss_mb": peak_rss_mb,
        "activity_seconds": {name: round(secs, 2) for name, secs in steps.items()},
    }


async def _prepare(stack: OwnStack, bill: Path) -> None:
    """Hand the sandbox the bill as WeChat Pay's ALL bill of the day (what its download will serve)."""
    url = f"{stack.services.sandbox_url}/_sandbox/statements/wechat/{DAY}"
    async with httpx.AsyncClient(timeout=300) as sandbox:
        with bill.open("rb") as body:
            (await sandbox.put(url, params={"bill_type": "ALL"}, content=body.read())).raise_for_status()


async def _reconcile(api: httpx.AsyncClient, *, deadline: float) -> tuple[dict[str, Any], float]:
    started = time.perf_counter()
    r = (await api.post("/v1/recon/runs", json={"source": "wechat", "bill_date": str(DAY)})).raise_for_status()
    run_id = r.json()["run_id"]
    last_said = started
    while True:
        run: dict[str, Any] = (await api.get(f"/v1/recon/runs/{run_id}")).raise_for_status().json()
        now = time.perf_counter()
        if run["status"] != "RUNNING":
            return run, now - started
        if now - started > deadline:
            raise TimeoutError(f"run {run_id} still RUNNING after {deadline:.0f}s (see the worker's log)")
        if now - last_said > 15:
            say(f"  still running after {now - started:.0f}s")
            last_said = now
        await asyncio.sleep(POLL_SECONDS)


async def _recorded(engine: AsyncEngine, run_id: int) -> set[tuple[str, str]]:
    async with engine.connect() as conn:
        rows = await conn.execute(
            text("SELECT type, our_no FROM recon_discrepancies WHERE run_id = :run"), {"run": run_id}
        )
        return {(str(t), str(n)) for t, n in rows}


def _peak_rss_mb(stack: OwnStack) -> float:
    """The worker's high-water mark of resident memory (Linux /proc), in MB."""
    proc = stack.services.children["worker"].proc
    assert proc is not None
    for line in Path(f"/proc/{proc.pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return round(int(line.split()[1]) / 1024, 1)
    return float("nan")


async def _explain(engine: AsyncEngine, run_id: int) -> None:
    """The classification's plan on this day, as run (rolled back: it would record the day again)."""
    start, end = business_day_bounds(DAY)
    params = {"run": run_id, "source": "wechat", "day": DAY, "start": start, "end": end, "rate": RATE_BP}
    async with engine.connect() as conn, conn.begin() as tx:
        plan = await conn.execute(text("EXPLAIN (ANALYZE, BUFFERS) " + classify_sql("wechat")), params)
        print("\n".join(str(row[0]) for row in plan), flush=True)
        await tx.rollback()
