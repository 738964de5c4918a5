from __future__ import annotations

import asyncio
import contextlib
import time

import httpx
import pytest
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from temporalio.api.enums.v1 import TaskQueueType
from temporalio.api.taskqueue.v1 import TaskQueue
from temporalio.api.workflowservice.v1 import DescribeTaskQueueRequest
from temporalio.client import Client

from db.engine import unit_of_work
from db.ledger import trial_balance
from db.ledger_checks import channel_disagreements, ledger_disagreements
from domain.settings import Settings
from ops.sandbox.faults import PAYMENT_CHANNELS
from tests.support.sandbox_receiver import eventually
from workflows.client.connection import connect
from workflows.client.queues import MAIN


@pytest.fixture(autouse=True)
async def ledger_invariants(sessions: async_sessionmaker[AsyncSession], request: pytest.FixtureRequest):  # type: ignore[no-untyped-def]
    """After every integration test: every entry balances, totals agree per currency, each balance is
    the sum of its lines, no account that may not go negative is negative, the ledger agrees with the
    business records it books (db/ledger_checks.py) and, for a test marked `checks_channels`, each channel's
    clearing account with what the sandbox's channel says it holds. A disagreement fails the test during
    which it appeared, not every test after it (differences are reported, so a test that posted without
    records on purpose, marked `raw_ledger` or `channel_diverges`, leaves a constant offset)."""
    raw = request.node.get_closest_marker("raw_ledger") is not None
    # Channels are compared only where a test asks for it (`checks_channels`): the comparison is global,
    # so flows an earlier test left running on the same stack (a refund the channel finishes later, a held
    # discrepancy parked after its hold) would be blamed on whichever test runs then. `ops chaos` and
    # test_ledger.py compare them too.
    outside = "services" in request.fixturenames and not raw
    outside = outside and request.node.get_closest_marker("checks_channels") is not None
    outside = outside and request.node.get_closest_marker("channel_diverges") is None
    async with unit_of_work(sessions) as session:
        before = await ledger_disagreements(session)
    if outside:
        sandbox = request.getfixturevalue("services").sandbox_url
        channels_before = await _channel_disagreements(sessions, sandbox)
    yield
    async with unit_of_work(sessions) as session:
        report = await trial_balance(session)
        appeared = await ledger_disagreements(session) - before
    assert report["balanced"], report["problems"]
    assert raw or not appeared, sorted(appeared)
    if outside:
        # A flow of the test may not have heard the channel's last answer yet (a refund the channel just
        # finished): the clearing account must come back to where it was, within a callback or a poll.
        async def agrees() -> bool:
            return not await _channel_disagreements(sessions, sandbox) - channels_before

        with contextlib.suppress(AssertionError):
            await eventually(agrees, 90)
        assert not (diverged := await _channel_disagreements(sessions, sandbox) - channels_before), sorted(diverged)


async def _channel_disagreements(sessions: async_sessionmaker[AsyncSession], sandbox_url: str) -> set[str]:
    async with httpx.AsyncClient(base_url=sandbox_url, timeout=10) as sandbox:
        r = await sandbox.get("/_sandbox/holdings")
    assert r.status_code == 200, r.text
    # The channels the sandbox plays are compared even before anyone paid them anything.
    held = {(channel, "CNY"): 0 for channel in PAYMENT_CHANNELS}
    held.update({(h["channel"], h["currency"]): int(h["held_minor"]) for h in r.json()})
    async with unit_of_work(sessions) as session:
        return await channel_disagreements(session, held)


@pytest.fixture(autouse=True)
async def stack_alive(request: pytest.FixtureRequest):  # type: ignore[no-untyped-def]
    """A test that leaves a process of the stack dead (a crash test that failed half-way) fails itself,
    and the process is started again, so the tests after it do not all time out on a missing worker."""
    yield
    if "services" not in request.fixturenames:
        return
    services = request.getfixturevalue("services")
    dead = [child.name for child in services.dead()]
    for name in dead:
        child = services.start(name)
        if name == "worker":
            temporal = await connect(Settings(), request.getfixturevalue("temporal_address"))
            await polling(temporal, child.proc.pid)
    assert not dead, f"the test left {', '.join(dead)} dead (restarted for the next test)"


async def polling(temporal: Client, pid: int, within: float = 30) -> None:
    """Wait until the worker with this pid polls the task queue (its identity is `pid@host`)."""
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        described = await temporal.workflow_service.describe_task_queue(
            DescribeTaskQueueRequest(
                namespace=temporal.namespace,
                task_queue=TaskQueue(name=MAIN),
                task_queue_type=TaskQueueType.TASK_QUEUE_TYPE_WORKFLOW,
            )
        )
        if any(p.identity.startswith(f"{pid}@") for p in described.pollers):
            return
        await asyncio.sleep(0.2)
    raise TimeoutError(f"the restarted worker (pid {pid}) did not poll {MAIN} within {within}s")
