"""`python -m ops bench orders --rate R --seconds S`: POST /v1/orders at a fixed rate, open loop.

Each request is due at `start + i / R` and is sent then whether or not earlier ones have answered, and
its latency is counted from when it was due, not from when it went out: a stalled server shows as the
latency every order behind it would see, not as a pause in sending (no coordinated omission). The client
keeps as many connections as it needs, so no request queues in it. Only placement is measured: the
orders then wait for a payment that never comes (their flows time out long after the run).
"""

from __future__ import annotations

import asyncio
import json
import sys
import time
import uuid
from dataclasses import dataclass

import httpx

from ops.bench.common import client_limits, percentile
from ops.bench.cpu import CpuMeter, cpu_lines
from ops.bench.lifecycle import Merchant, order_body
from ops.bench.orders import BENCH_ENV, seed_stack
from ops.bench.servers import OwnStack, failed, own_stack, say

# The orders placed here are never paid: their payment flows poll the channel on the production schedule
# (domain/settings.py), not on the lifecycle benchmark's 1-2 s one: there, hundreds of unpaid flows each
# polling every 2 s add a load no real run has, and the placements measured queue behind it.
OPEN_LOOP_ENV = {k: v for k, v in BENCH_ENV.items() if not k.startswith("BACKOFFICE_PAYMENT_POLL_")}


@dataclass(frozen=True)
class Sent:
    latency_s: float
    lag_s: float  # how late the sender was: near zero unless the benchmark itself cannot keep up
    status: int  # 0 when no answer came (connection error, timeout)


def summary(rate: float, seconds: float, sent: list[Sent], wall: float, cpu: dict[str, float]) -> dict[str, object]:
    ok = [s.latency_s * 1000 for s in sent if s.status == 201]
    errors: dict[str, int] = {}
    for s in sent:
        if s.status != 201:
            errors[str(s.status)] = errors.get(str(s.status), 0) + 1
    everyone = [s.latency_s * 1000 for s in sent]
    return {
        "rate": rate,
        "seconds": seconds,
        "sent": len(sent),
        "ok": len(ok),
        "errors": sum(errors.values()),
        "errors_by_status": errors,
        "achieved_per_s": round(len(ok) / wall, 2),
        "p50_ms": round(percentile(everyone, 50), 1),
        "p99_ms": round(percentile(everyone, 99), 1),
        "max_ms": round(max(everyone), 1),
        "ok_p99_ms": round(percentile(ok, 99), 1),
        "send_lag_max_ms": round(max(s.lag_s for s in sent) * 1000, 1),
        "cpu_ms_per_order": {k: round(v / len(sent) * 1000, 1) for k, v in cpu.items()},
    }


async def _fire(
    api: httpx.AsyncClient, auth: dict[str, str], merchants: list[Merchant], rate: float, n: int
) -> list[Sent]:
    results: list[Sent] = []

    async def one(i: int, due: float) -> None:
        sent_at = time.perf_counter()
        merchant = merchants[i % len(merchants)]
        try:
            r = await api.post(
                "/v1/orders",
                json=order_body(merchant.merchant_id, i),
                headers={**auth, "Idempotency-Key": uuid.uuid4().hex},
            )
            status = r.status_code
        except httpx.HTTPError:
            status = 0
        results.append(Sent(time.perf_counter() - due, sent_at - due, status))

    start = time.perf_counter() + 0.05
    async with asyncio.TaskGroup() as group:
        for i in range(n):
            due = start + i / rate
            delay = due - time.perf_counter()
            if delay > 0:
                await asyncio.sleep(delay)
            group.create_task(one(i, due))
    return results


async def _bench(stack: OwnStack, rate: float, seconds: float) -> dict[str, object]:
    n = max(1, round(rate * seconds))
    service_key, merchants = await seed_stack(stack.database_url, merchants=10, providers=15)
    auth = {"Authorization": f"Bearer {service_key}"}
    limits = client_limits(None, 200)
    async with httpx.AsyncClient(base_url=stack.services.api_url, timeout=60, limits=limits) as api:
        say("warm-up: 10 orders one after another (not measured)")
        for i in range(10):
            body = order_body(merchants[i % len(merchants)].merchant_id, -1 - i)
            r = await api.post("/v1/orders", json=body, headers={**auth, "Idempotency-Key": uuid.uuid4().hex})
            r.raise_for_status()
        say(f"open loop: {n} orders at {rate}/s for {seconds:g}s")
        meter = CpuMeter(stack.pids)
        meter.start()
        started = time.perf_counter()
        sent = await _fire(api, auth, merchants, rate, n)
        wall = time.perf_counter() - started
        cpu = meter.stop()
    for line in cpu_lines(cpu, n):
        print(line)
    return summary(rate, seconds, sent, wall, cpu)


def run_open(rate: float, seconds: float) -> int:
    if rate <= 0 or seconds <= 0:
        print("--rate and --seconds must be positive", file=sys.stderr)
        return 2
    try:
        with own_stack("bench-orders-open-", OPEN_LOOP_ENV) as stack:
            s = asyncio.run(_bench(stack, rate, seconds))
    except (KeyboardInterrupt, Exception) as exc:
        return failed(exc)
    print(
        f"open loop: {s['sent']} POST /v1/orders at {rate}/s: p50 {s['p50_ms']} ms, p99 {s['p99_ms']} ms, "
        f"max {s['max_ms']} ms, {s['errors']} errors {s['errors_by_status'] or ''}"
    )
    print(json.dumps(s), flush=True)
    return 0
