"""`python -m ops bench console`: how fast the console's pages render with a realistic amount of data
(10,000 orders and 1,000 statements waiting for finance by default), against the API call each page is
built on (the console's own cost is the difference), in the same run on the same servers.

Seeding goes through a real settlement cycle with auto-approval off, so the statements are the ones a
cycle leaves pending. Last line JSON: per page p50/p99 ms, the API baseline's, their ratio, and the worst p99."""

from __future__ import annotations

import asyncio
import json
import re
import sys
import time

import httpx

from db.api_keys import issue_key
from db.demo import create_active_merchant, seed_settleable_orders
from db.engine import make_engine, make_session_factory, unit_of_work
from domain.access import Role
from ops.bench.common import percentile
from ops.bench.servers import OwnStack, own_stack, say

# No statement approves itself: every one waits in the finance queue.
BENCH_ENV = {"BACKOFFICE_SETTLEMENT_AUTO_APPROVE_MAX_MINOR": "0"}
GOAL_MS = 200


def run(orders: int, statements: int, repeats: int) -> int:
    if not 1 <= statements <= orders:
        print("--statements must be between 1 and --orders", file=sys.stderr)
        return 2
    with own_stack("bench-console-", BENCH_ENV) as stack:
        summary = asyncio.run(_bench(stack, orders, statements, repeats))
    print(json.dumps(summary))
    worst = summary["worst_p99_ms"]
    return 0 if isinstance(worst, float) and worst <= GOAL_MS else 1


async def _bench(stack: OwnStack, orders: int, statements: int, repeats: int) -> dict[str, object]:
    engine = make_engine(stack.database_url, pool_size=2)
    try:
        say(f"seeding {orders} orders over {statements} merchants")
        sessions = make_session_factory(engine)
        async with unit_of_work(sessions) as session:
            _, key = await issue_key(session, role=Role.FINANCE, name="bench-console")
            _, operator = await issue_key(session, role=Role.OPERATOR, name="bench-console-ops")
        merchants = []
        for i in range(statements):
            async with unit_of_work(sessions) as session:
                m = await create_active_merchant(session, name=f"Console merchant {i}", category="home")
                share = orders // statements + (1 if i < orders % statements else 0)
                merchants.append((m, await seed_settleable_orders(session, m, share, amount_minor=1000 + i)))
    finally:
        await engine.dispose()
    await asyncio.sleep(1.1)  # the cycle's cutoff is a whole second: the seeds lie before it
    api = httpx.AsyncClient(base_url=stack.services.api_url, timeout=120, headers={"Authorization": f"Bearer {key}"})
    r = await api.post("/v1/settlement-runs", json={})
    r.raise_for_status()
    say(f"settlement cycle {r.json()['cycle_id']}: waiting for {statements} pending statements")
    while True:
        pending = await api.get("/v1/settlements", params={"status": "PENDING_APPROVAL", "limit": 1000})
        if len(pending.json()) >= min(statements, 1000):
            break
        await asyncio.sleep(1)
    statement_id = pending.json()[0]["id"]
    merchant_id, order_nos = merchants[0]
    browser = await _signed_in(stack.services.api_url, key)
    ops_browser = await _signed_in(stack.services.api_url, operator)
    ops_api = httpx.AsyncClient(
        base_url=stack.services.api_url, timeout=120, headers={"Authorization": f"Bearer {operator}"}
    )
    pages = {
        "overview": (browser, "/console", api, "/v1/settlements?status=PENDING_APPROVAL&limit=1"),
        "finance": (browser, "/console/finance", api, "/v1/settlements?status=PENDING_APPROVAL"),
        "statement": (browser, f"/console/statements/{statement_id}", api, f"/v1/settlements/{statement_id}"),
        "trial_balance": (browser, "/console/ledger", api, "/v1/ledger/trial-balance"),
        "merchant": (browser, f"/console/merchants/{merchant_id}", api, f"/v1/merchants/{merchant_id}/balance"),
        "order": (ops_browser, f"/console/orders?no={order_nos[0]}", ops_api, f"/v1/orders/{order_nos[0]}"),
        "stuck": (ops_browser, "/console/ops", ops_api, "/v1/ops/stuck"),
    }
    result: dict[str, object] = {"orders": orders, "statements": statements, "repeats": repeats}
    worst = 0.0
    for name, (client, path, base_client, base_path) in pages.items():
        page_ms = await _times(client, path, repeats)
        base_ms = await _times(base_client, base_path, repeats)
        p50, p99 = percentile(page_ms, 50), percentile(page_ms, 99)
        worst = max(worst, p99)
        result[name] = {
            "p50_ms": round(p50, 1),
            "p99_ms": round(p99, 1),
            "api_p50_ms": round(percentile(base_ms, 50), 1),
            "ratio_vs_api": round(percentile(base_ms, 50) / p50, 3),
        }
        say(f"{name}: p50 {p50:.1f} ms, p99 {p99:.1f} ms")
    result["worst_p99_ms"] = round(worst, 1)
    for c in (api, browser, ops_browser, ops_api):
        await c.aclose()
    return result


async def _signed_in(base_url: str, key: str) -> httpx.AsyncClient:
    client = httpx.AsyncClient(base_url=base_url, timeout=120)
    form = await client.get("/console/sign-in")
    pre = re.search(r'name="pre" value="([^"]+)"', form.text)
    assert pre is not None
    r = await client.post("/console/sign-in", data={"api_key": key, "pre": pre.group(1)})
    assert r.status_code == 303, r.text
    return client


async def _times(client: httpx.AsyncClient, path: str, repeats: int) -> list[float]:
    times = []
    for _ in range(repeats):
        started = time.perf_counter()
        r = await client.get(path)
        times.append((time.perf_counter() - started) * 1000)
        if r.status_code != 200:
            raise RuntimeError(f"GET {path}: {r.status_code} {r.text[:300]}")
    return times
