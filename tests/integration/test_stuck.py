"""Stuck flows as operators see them (`GET /v1/ops/stuck`, `python -m ops stuck`): a flow is listed only
once it has rested in its stage past that stage's SLA (a business deadline plus five minutes, a reminder
period for people, an hour for anything else), worst overrun first, and a healthy flow never is.

Flows resting for minutes or days cannot be waited for in a test: probes stand in for them, workflows
that no worker runs, started with the search attributes a flow of that age would carry."""

from __future__ import annotations

import asyncio
import subprocess
import sys
import time
import uuid
from datetime import UTC, datetime, timedelta

from temporalio.client import Client
from temporalio.common import SearchAttributePair, TypedSearchAttributes

from domain.access import Role
from tests.support.sandbox_receiver import eventually
from tests.support.shop import Shop
from workflows.ids import order_workflow_id, payment_workflow_id
from workflows.search_attributes import BO_FLOW, BO_STAGE, BO_STAGE_SINCE

# SLAs of the test stack (tests/support/stack.py durations): deadline + 300 s, reminder period, default.
AWAITING_PAYMENT_SLA = 8 + 300
DELIVERED_SLA = 5 + 300
FINANCE_SLA = 2
DEFAULT_SLA = 3600
REFUND_POLL_SLA = 7 * 24 * 3600 + 300  # a refund's poll window (7 days) + 300 s

PROBES = {  # name: (stage, seconds resting when started)
    "ancient": ("PROBE_STAGE", 30 * 24 * 3600.0),  # started first: visibility lists it last
    "payment-past-margin": ("AWAITING_PAYMENT", AWAITING_PAYMENT_SLA + 4.0),
    "payment-past-deadline-only": ("AWAITING_PAYMENT", 200.0),  # 8 s deadline long gone, margin not
    "default-over": ("PROBE_STAGE", DEFAULT_SLA + 100.0),
    "default-under": ("PROBE_STAGE", DEFAULT_SLA - 100.0),
    "finance": ("AWAITING_FINANCE_APPROVAL", FINANCE_SLA + 58.0),
    "delivered-a": ("DELIVERED", DELIVERED_SLA + 20.2),
    "delivered-b": ("DELIVERED", DELIVERED_SLA + 20.7),  # half a second worse than a: listed before it
    # A refund the channel still has not answered when its poll window ran out is polled on, not handed to
    # finance; operators see it five minutes after the window.
    "refund-polled-out": ("PROCESSING", REFUND_POLL_SLA + 40.0),
    "refund-past-window-only": ("PROCESSING", REFUND_POLL_SLA - 200.0),
}
WORST_FIRST = [
    "ancient",
    "default-over",
    "finance",
    "refund-polled-out",
    "delivered-b",
    "delivered-a",
    "payment-past-margin",
]


async def start_probes(temporal: Client, tag: str) -> dict[str, str]:
    ids = {}
    for name, (stage, resting) in PROBES.items():
        ids[name] = f"stuck-probe-{tag}-{name}"
        await temporal.start_workflow(
            "StuckProbe",
            id=ids[name],
            task_queue=f"stuck-probes-{tag}",  # no worker polls it: the probe rests where it started
            search_attributes=TypedSearchAttributes(
                [
                    SearchAttributePair(BO_FLOW, tag),
                    SearchAttributePair(BO_STAGE, stage),
                    SearchAttributePair(BO_STAGE_SINCE, datetime.now(UTC) - timedelta(seconds=resting)),
                ]
            ),
        )
    return ids


async def listed(shop: Shop, **params: int) -> list[dict]:  # type: ignore[type-arg]
    r = await shop.api.get("/v1/ops/stuck", params=params, headers=shop.as_(Role.OPERATOR))
    assert r.status_code == 200, r.text
    body: list[dict] = r.json()  # type: ignore[type-arg]
    return body


async def test_stuck_flows_are_listed_past_their_sla_worst_overrun_first(shop, temporal):
    tag = f"probe{uuid.uuid4().hex[:8]}"
    merchant_id = await shop.merchant()
    healthy = await shop.placed(merchant_id)  # a flow resting in AWAITING_PAYMENT, well within its deadline
    started = time.time()
    ids = await start_probes(temporal, tag)
    try:

        async def all_visible() -> bool:
            seen = [wf.id async for wf in temporal.list_workflows(f'ExecutionStatus = "Running" AND BoFlow = "{tag}"')]
            return len(seen) == len(PROBES)

        await eventually(all_visible, 20)
        flows = await listed(shop, limit=1000)
        answered = time.time()
        mine = {f["workflow_id"]: f for f in flows if f["workflow_id"].startswith(f"stuck-probe-{tag}-")}
        by_id = {v: k for k, v in ids.items()}
        assert [by_id[wid] for wid in mine] == WORST_FIRST, [(by_id[w], f["overrun_seconds"]) for w, f in mine.items()]
        assert order_workflow_id(healthy["order_no"]) not in {f["workflow_id"] for f in flows}
        assert payment_workflow_id(healthy["payment"]["payment_no"]) not in {f["workflow_id"] for f in flows}
        # The overrun is the time past the stage's SLA, exactly (bounded by when the list was made).
        for wid, f in mine.items():
            stage, resting = PROBES[by_id[wid]]
            sla = {
                "AWAITING_PAYMENT": AWAITING_PAYMENT_SLA,
                "DELIVERED": DELIVERED_SLA,
                "AWAITING_FINANCE_APPROVAL": FINANCE_SLA,
                "PROCESSING": REFUND_POLL_SLA,
            }.get(stage, DEFAULT_SLA)
            assert (f["stage"], f["sla_seconds"], f["flow"]) == (stage, sla, tag)
            assert resting - sla <= f["overrun_seconds"] <= resting + (answered - started) - sla, (by_id[wid], f)
        # The limit keeps the worst, not the first found.
        [worst] = await listed(shop, limit=1)
        assert worst["workflow_id"] == ids["ancient"], worst

        cli = await asyncio.to_thread(
            subprocess.run,
            [sys.executable, "-m", "ops", "stuck", "--limit", "1000"],
            env=shop.services.env,
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert cli.returncode == 0, cli.stderr
        printed = [line.split()[0] for line in cli.stdout.splitlines() if line.startswith(f"stuck-probe-{tag}-")]
        assert [by_id[wid] for wid in printed] == WORST_FIRST, cli.stdout
        assert healthy["order_no"] not in cli.stdout
    finally:
        for wid in ids.values():
            await temporal.get_workflow_handle(wid).terminate(reason="test probe done")
