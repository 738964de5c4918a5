"""Run the chaos workload on servers of its own, kill the worker N times while it runs, then judge.

The workload is the money paths at once: orders through delivery with two after-sale refunds each, a
settlement cycle over thousands of seeded orders, withdrawals through payout batches, and merchant
onboarding. Each kill is a SIGKILL of the worker at a random moment, followed at once by a new worker,
as a crash-looping pod would be. The last line printed is the verdict as JSON."""

from __future__ import annotations

import asyncio
import json
import random
import sys
import traceback
from datetime import UTC, datetime
from typing import Any

import httpx
from sqlalchemy.ext.asyncio import AsyncEngine

from db.api_keys import issue_key
from db.demo import (
    create_active_merchant,
    fund_merchant,
    record_verified_bank_account,
    seed_providers,
    seed_settleable_orders,
)
from db.engine import make_engine, make_session_factory, unit_of_work
from domain.access import Role
from domain.crypto import FieldCipher
from domain.settings import Settings
from ops.bench.servers import OwnStack, own_stack, say
from ops.chaos.actors import Actors, Keys
from ops.chaos.checks import Verdict, judge, unfinished_flows
from workflows.client.connection import connect

# Short business waits so a run takes a minute or two, long deadlines so no flow times out on purpose:
# everything that goes wrong is then the crashes' doing.
CHAOS_ENV = {
    "BACKOFFICE_AFTER_SALE_WINDOW_SECONDS": "20",
    "BACKOFFICE_AUTO_CONFIRM_SECONDS": "300",
    "BACKOFFICE_PAYMENT_TIMEOUT_SECONDS": "300",
    "BACKOFFICE_PAYMENT_POLL_INITIAL_SECONDS": "1",
    "BACKOFFICE_PAYMENT_POLL_MAX_SECONDS": "2",
    "BACKOFFICE_REFUND_POLL_INITIAL_SECONDS": "1",
    "BACKOFFICE_MERCHANT_ACCEPT_TIMEOUT_SECONDS": "300",
    "BACKOFFICE_DISPATCH_ACCEPT_TIMEOUT_SECONDS": "300",
    "BACKOFFICE_PAYOUT_BATCH_SECONDS": "1",
    "BACKOFFICE_PAYOUT_UNKNOWN_ESCALATE_SECONDS": "300",
    "BACKOFFICE_SETTLEMENT_AUTO_APPROVE_MAX_MINOR": str(10**15),
    "BACKOFFICE_SETTLEMENT_PAGE_SIZE": "500",
    "SANDBOX_RETRY_BASE_MS": "200",
}
DRAIN_SECONDS = 180


def run(kills: int, orders: int, seeded: int, seed: int | None) -> int:
    if kills < 0 or orders < 1 or seeded < 0:
        print("--kills and --seeded must be at least 0, --orders at least 1", file=sys.stderr)
        return 2
    rng = random.Random(seed)
    try:
        with own_stack("chaos-", CHAOS_ENV) as stack:
            verdict = asyncio.run(_chaos(stack, kills, orders, seeded, rng))
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    except Exception as exc:  # the workload itself broke: say what; own_stack said where the logs are
        errors = exc.exceptions if isinstance(exc, ExceptionGroup) else [exc]
        for error in errors[:3]:
            traceback.print_exception(error, file=sys.stderr)
        print(f"chaos failed: {errors[0]}", file=sys.stderr)
        return 1
    for problem in (verdict.duplicates + verdict.lost + verdict.disagreements)[:50]:
        print(f"  {problem}")
    print(json.dumps(verdict.summary()), flush=True)
    return 0 if verdict.ok else 1


async def _chaos(stack: OwnStack, kills: int, orders: int, seeded: int, rng: random.Random) -> Verdict:
    engine = make_engine(stack.database_url, pool_size=2)
    temporal = await connect(Settings(), stack.temporal_address)
    try:
        keys, payees = await _seed(engine, seeded)
        # The seeded orders are settleable now; a cutoff a second ahead takes them all, and names the
        # cycle, so a retried start lands on the same one.
        await asyncio.sleep(1.1)
        cutoff = datetime.now(UTC).replace(microsecond=0).isoformat()
        async with (
            httpx.AsyncClient(base_url=stack.services.api_url, timeout=60) as api,
            httpx.AsyncClient(timeout=60) as outside,
        ):
            actors = Actors(api, outside, keys)
            merchants = [m for m in keys.merchants if m not in payees]
            work = [
                *(actors.order_with_refunds(merchants[i % len(merchants)], i, (1000, 700)) for i in range(orders)),
                *(actors.withdrawal(payees[i % len(payees)], 10_000 + i, i) for i in range(len(payees) * 2)),
                *(actors.onboarding(i) for i in range(3)),
                *([actors.settlement_cycle(cutoff)] if seeded else []),
            ]
            say(f"{len(work)} flows of work, {kills} worker kills at random moments")
            workload = asyncio.ensure_future(asyncio.gather(*work))
            await _killer(stack, kills, workload, rng)
            await workload
        say("workload done; waiting for every flow to finish")
        for waited in range(DRAIN_SECONDS):
            running = await unfinished_flows(temporal)
            if not running:
                break
            if waited % 15 == 0:
                say(f"{len(running)} flows still running, e.g. {running[:3]}")
            await asyncio.sleep(1)
        return await judge(Verdict(kills), engine, stack.services.sandbox_db, temporal)
    finally:
        await engine.dispose()


async def _killer(stack: OwnStack, kills: int, workload: asyncio.Future[Any], rng: random.Random) -> None:
    for n in range(kills):
        await asyncio.wait([workload], timeout=rng.uniform(0.5, 4.0))
        if workload.done():
            say(f"the workload finished before kill {n + 1}")
            return
        stack.services.restart_worker(kill=True)
        say(f"kill {n + 1}/{kills}: worker SIGKILLed and restarted")


async def _seed(engine: AsyncEngine, seeded: int) -> tuple[Keys, list[str]]:
    cipher = FieldCipher(Settings().field_encryption_key)
    async with unit_of_work(make_session_factory(engine)) as session:
        _, service = await issue_key(session, role=Role.SERVICE, name="chaos-service")
        _, finance = await issue_key(session, role=Role.FINANCE, name="chaos-finance")
        _, auditor = await issue_key(session, role=Role.AUDITOR, name="chaos-auditor")
        merchant_keys: dict[str, str] = {}
        payees: list[str] = []
        for i in range(6):
            m = await create_active_merchant(session, name=f"Chaos merchant {i}", category="home")
            _, merchant_keys[m] = await issue_key(session, role=Role.MERCHANT, name=m, merchant_id=m)
            if i >= 4:  # two merchants withdraw; their money comes in as a settlement would bring it
                await record_verified_bank_account(session, m, cipher)
                await fund_merchant(session, m, 1_000_000)
                payees.append(m)
            elif seeded:
                await seed_settleable_orders(
                    session, m, seeded // 4, amount_minor=1990 + 7 * i, commission_bps=333, prefix="CH"
                )
        await seed_providers(session, 30, prefix="chaos-prov")
    return Keys(service, finance, auditor, merchant_keys), payees
