"""Starting a flow and asking it, as every starter does: a flow's refusal comes back as `Refused` with the
flow's code unchanged (the API answers it with the status from its one table, api/errors.py)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

from temporalio.client import Client, WithStartWorkflowOperation, WorkflowUpdateFailedError
from temporalio.common import WorkflowIDConflictPolicy, WorkflowIDReusePolicy
from temporalio.exceptions import ApplicationError, WorkflowAlreadyStartedError
from temporalio.service import RPCError, RPCStatusCode
from temporalio.workflow import UpdateMethodMultiParam

from domain.refusals import Refusal, Refused
from domain.settlement import CycleInput
from domain.withdrawals import BatcherInput, PayoutTerms
from workflows.client.queues import MAIN
from workflows.ids import PAYOUT_BATCHER_WORKFLOW_ID, settlement_workflow_id
from workflows.payout_batch import PayoutBatchWorkflow
from workflows.settlement import SettlementWorkflow

T = TypeVar("T")


def _code(type_: str | None) -> Refusal:
    try:
        return Refusal(type_ or Refusal.REFUSED)
    except ValueError:  # every refusal is in the vocabulary; anything else is a defect, still a refusal
        return Refusal.REFUSED


async def call_flow(pending: Awaitable[T], what: str) -> T:
    """Await an update (or update-with-start) and turn what Temporal answers instead into a refusal."""
    try:
        return await pending
    except WorkflowUpdateFailedError as exc:
        cause = exc.cause
        while cause is not None and not isinstance(cause, ApplicationError):
            cause = cause.__cause__  # type: ignore[assignment]
        if isinstance(cause, ApplicationError):
            # The flow's refusal, carried unchanged.
            raise Refused(_code(cause.type), cause.message) from None
        raise Refused(Refusal.REFUSED, f"{what} was refused: {exc}") from None
    except WorkflowAlreadyStartedError:
        raise Refused(
            Refusal.FLOW_FINISHED, f"{what}: its flow has already finished; read the outcome from its resource"
        ) from None
    except RPCError as exc:
        if exc.status is RPCStatusCode.NOT_FOUND:
            raise Refused(
                Refusal.FLOW_NOT_RUNNING, f"{what}: no flow is running for it (finished, or not started yet)"
            ) from None
        raise Refused(Refusal.TEMPORAL_UNAVAILABLE, f"{what}: Temporal did not answer ({exc.status.name})") from None


async def start_and_ask(
    temporal: Client,
    run: Callable[..., Awaitable[Any]],
    inp: Any,
    workflow_id: str,
    update: UpdateMethodMultiParam[[Any], T],
    what: str,
    *,
    repeatable: bool = False,
) -> T:
    """Start the flow `workflow_id` (or attach to it if it runs: ids are business keys) and ask it, in
    the same call, the Update `update` (a handler of the flow, e.g. `OrderWorkflow.placed`) whose answer
    the caller needs (update-with-start).

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
    # The update's registered name, as when updates were named by string: a retry across a deploy still
    # finds the first answer.
    update_id = None if repeatable else f"{update._defn.name}:{workflow_id}"
    return await call_flow(
        temporal.execute_update_with_start_workflow(update, start_workflow_operation=start, id=update_id),
        what,
    )


async def ensure_payout_batcher(temporal: Client, terms: PayoutTerms) -> None:
    """The payout batcher is one long-lived flow; starting it when it runs already is a no-op."""
    await temporal.start_workflow(
        PayoutBatchWorkflow.run,
        BatcherInput(terms=terms),
        id=PAYOUT_BATCHER_WORKFLOW_ID,
        task_queue=MAIN,
        id_conflict_policy=WorkflowIDConflictPolicy.USE_EXISTING,
    )


async def start_settlement_cycle(temporal: Client, cycle_id: str, inp: CycleInput) -> str:
    """Start the cycle `cycle_id` once: a cutoff that has run (or runs) is the same cycle. Its workflow id."""
    workflow_id = settlement_workflow_id(cycle_id)
    try:
        await temporal.start_workflow(
            SettlementWorkflow.run,
            inp,
            id=workflow_id,
            task_queue=MAIN,
            id_conflict_policy=WorkflowIDConflictPolicy.USE_EXISTING,
            id_reuse_policy=WorkflowIDReusePolicy.REJECT_DUPLICATE,
        )
    except WorkflowAlreadyStartedError:
        pass
    return workflow_id
