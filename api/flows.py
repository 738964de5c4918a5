"""Talking to flows from the API: refusals from workflow updates become problem+json answers."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

from temporalio.client import Client, WithStartWorkflowOperation, WorkflowUpdateFailedError
from temporalio.common import WorkflowIDConflictPolicy, WorkflowIDReusePolicy
from temporalio.exceptions import ApplicationError, WorkflowAlreadyStartedError
from temporalio.service import RPCError, RPCStatusCode

from api.errors import ApiError
from domain.refusals import Refusal
from workers.queues import MAIN

T = TypeVar("T")


def _code(type_: str | None) -> Refusal:
    try:
        return Refusal(type_ or Refusal.REFUSED)
    except ValueError:  # every refusal is in the vocabulary; anything else is a defect, still a refusal
        return Refusal.REFUSED


async def call_flow(pending: Awaitable[T], what: str) -> T:
    try:
        return await pending
    except WorkflowUpdateFailedError as exc:
        cause = exc.cause
        while cause is not None and not isinstance(cause, ApplicationError):
            cause = cause.__cause__  # type: ignore[assignment]
        if isinstance(cause, ApplicationError):
            # The flow's refusal, carried unchanged: its code decides the status (api/errors.py).
            raise ApiError(_code(cause.type), cause.message) from None
        raise ApiError(Refusal.REFUSED, f"{what} was refused: {exc}") from None
    except WorkflowAlreadyStartedError:
        raise ApiError(
            Refusal.FLOW_FINISHED, f"{what}: its flow has already finished; read the outcome from its resource"
        ) from None
    except RPCError as exc:
        if exc.status is RPCStatusCode.NOT_FOUND:
            raise ApiError(
                Refusal.FLOW_NOT_RUNNING, f"{what}: no flow is running for it (finished, or not started yet)"
            ) from None
        raise ApiError(Refusal.TEMPORAL_UNAVAILABLE, f"{what}: Temporal did not answer ({exc.status.name})") from None


async def start_and_ask(
    temporal: Client,
    run: Callable[..., Awaitable[Any]],
    inp: Any,
    workflow_id: str,
    update: str,
    result_type: type[T],
    what: str,
    *,
    repeatable: bool = False,
) -> T:
    """Start the flow `workflow_id` (or attach to it if it runs: ids are business keys) and ask it, in
    the same call, the Update `update` whose answer the caller needs (update-with-start).

    A client retrying a request whose answer it never got must reach the same flow and the same answer,
    even if that flow has finished since: a finished id is never started again (REJECT_DUPLICATE), and
    the Update's id is fixed by the flow's id, so Temporal answers a repeat with the first outcome.
    A `repeatable` flow (a reconciliation run of a day) starts a new run once the last one finished."""
    start = WithStartWorkflowOperation(
        run,
        inp,
        id=workflow_id,
        task_queue=MAIN,
        id_conflict_policy=WorkflowIDConflictPolicy.USE_EXISTING,
        id_reuse_policy=WorkflowIDReusePolicy.ALLOW_DUPLICATE if repeatable else WorkflowIDReusePolicy.REJECT_DUPLICATE,
    )
    update_id = None if repeatable else f"{update}:{workflow_id}"
    return await call_flow(
        temporal.execute_update_with_start_workflow(
            update, start_workflow_operation=start, result_type=result_type, id=update_id
        ),
        what,
    )
