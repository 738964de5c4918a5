from __future__ import annotations

import asyncio
import time

import httpx
import pytest
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from temporalio.api.enums.v1 import TaskQueueType
from temporalio.api.taskqueue.v1 import TaskQueue
from temporalio.api.workflowservice.v1 import DescribeTaskQueueRequest
from temporalio.client import Client

from db.engine import unit_of_work
from db.ledger import trial_balance
from db.ledger_checks import ledger_disagreements, payment_channel_disagreements
from db.models import Payment, Refund
from domain.refunds import RefundOrigin, RefundStatus
from domain.settings import Settings
from ops.sandbox.faults import PAYMENT_CHANNELS
from tests.support.shop import held_of
from workflows.client.connection import connect
from workflows.client.queues import MAIN


@pytest.fixture(autouse=True)
async def ledger_invariants(sessions: async_sessionmaker[AsyncSession], request: pytest.FixtureRequest):  # type: ignore[no-untyped-def]
    """After every integration test: every entry balances, totals agree per currency, each balance is
    the sum of its lines, no account that may not go negative is negative, the ledger agrees with the
    business records it books (db/ledger_checks.py) and, for a test that ran the stack, what each of the
    test's own payments moved on a channel's clearing account is what the sandbox's channel holds of it.
    A disagreement fails the test during which it appeared, not every test after it (differences are
    reported, so a test that posted without records on purpose, marked `raw_ledger`, leaves a constant
    offset; a test marked `channel_diverges` makes the sandbox disagree on purpose and is not compared)."""
    raw = request.node.get_closest_marker("raw_ledger") is not None
    channels = "services" in request.fixturenames and request.node.get_closest_marker("channel_diverges") is None
    async with unit_of_work(sessions) as session:
        before = await ledger_disagreements(session)
        numbers_before = {number for number, _ in await _payment_numbers(session)} if channels else set()
    yield
    async with unit_of_work(sessions) as session:
        report = await trial_balance(session)
        appeared = await ledger_disagreements(session) - before
        own = (
            {p for number, p in await _payment_numbers(session) if number not in numbers_before} if channels else set()
        )
    assert report["balanced"], report["problems"]
    assert raw or not appeared, sorted(appeared)
    if own:
        diverged = await _settled_comparison(sessions, request.getfixturevalue("services").sandbox_url, own)
        assert not diverged, sorted(diverged)


async def _payment_numbers(session: AsyncSession) -> list[tuple[str, str]]:
    """(number, payment it belongs to) of every payment and every refund asked for through the API.

    A test's own payments are those whose payment, or an API refund of it, appeared during the test (a
    payment an earlier test or a module fixture made, refunded here, is this test's to compare too). A
    refund a flow opened itself (a duplicate payment returned, money paid after a cancel) belongs to its
    payment's test: it may appear during a later test, and must not be compared there."""
    rows = await session.execute(
        select(Payment.payment_no, Payment.payment_no).union_all(
            select(Refund.refund_no, Refund.payment_no).where(Refund.origin == RefundOrigin.API.value)
        )
    )
    return [(str(number), str(payment)) for number, payment in rows]


# How long a test's own flows may take to hear the channel's last answer (a callback, a poll), and how long
# the comparison waits for refunds of the test's payments still PROCESSING (one the channel finishes after
# this would go unchecked: its payment is compared at its own test's end only).
_AGREE_WITHIN = 60.0
_SETTLE_WITHIN = 10.0


async def _settled_comparison(sessions: async_sessionmaker[AsyncSession], sandbox_url: str, own: set[str]) -> set[str]:
    """What the ledger and the sandbox's channels disagree on about these payments, once their refunds
    have finished (or `_SETTLE_WITHIN` passed) and they agree (or `_AGREE_WITHIN` passed)."""
    start = time.monotonic()
    async with httpx.AsyncClient(base_url=sandbox_url, timeout=10) as sandbox:
        while True:
            held = await held_of(sandbox, own)
            async with unit_of_work(sessions) as session:
                diverged = await payment_channel_disagreements(
                    session, held, payments=own, channels=set(PAYMENT_CHANNELS)
                )
                processing = (
                    await session.execute(
                        select(func.count())
                        .select_from(Refund)
                        .where(Refund.payment_no.in_(own), Refund.status == RefundStatus.PROCESSING.value)
                    )
                ).scalar_one()
            waited = time.monotonic() - start
            if (not diverged and (not processing or waited >= _SETTLE_WITHIN)) or waited >= _AGREE_WITHIN:
                return diverged
            await asyncio.sleep(0.25)


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
