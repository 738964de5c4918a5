"""StatementWorkflow on its own: adjustments under the domain's bound, maker-checker on approval, a
posting that fails and leaves only rejection, and the decision validator."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from temporalio import activity
from temporalio.client import Client, WorkflowHandle

from activities.refusals import carried
from domain.refusals import Refusal
from domain.settlement import (
    AdjustmentRecord,
    Decision,
    StatementInput,
    StatementOutcome,
    StatementRef,
    StatementStatus,
)
from domain.statement_rules import check_adjustment
from tests.workflows.conftest import Flow, at_stage, eventually, refusal_of
from workflows.ids import statement_workflow_id
from workflows.statement import StatementWorkflow

COMMISSION, NET = 300, 700


@dataclass
class Statements:
    """The statement's records as the doubles keep them; `posting_fails` makes approval fail to post."""

    posting_fails: bool = False
    calls: list[tuple[str, Any]] = field(default_factory=list)

    def names(self) -> list[str]:
        return [name for name, _ in self.calls]

    def doubles(self) -> list[Any]:
        @activity.defn(name="settlement.adjust")
        async def adjust(a: AdjustmentRecord) -> None:
            self.calls.append(("settlement.adjust", a))
            with carried():  # the real rule, as the real activity asks it
                check_adjustment(COMMISSION, NET, a.amount_minor)

        @activity.defn(name="settlement.approve")
        async def approve(d: Decision) -> StatementOutcome:
            self.calls.append(("settlement.approve", d))
            if self.posting_fails:
                return StatementOutcome(
                    statement_id=d.statement_id, status=StatementStatus.FAILED, by=d.by, failure="bad promoter"
                )
            return StatementOutcome(statement_id=d.statement_id, status=StatementStatus.APPROVED, by=d.by)

        @activity.defn(name="settlement.reject")
        async def reject(d: Decision) -> StatementOutcome:
            self.calls.append(("settlement.reject", d))
            return StatementOutcome(statement_id=d.statement_id, status=StatementStatus.REJECTED, by=d.by)

        return [adjust, approve, reject]


async def start(client: Client, flow: Flow) -> WorkflowHandle[Any, StatementOutcome]:
    ref = StatementRef(statement_id=41, merchant_id="m-1", currency="CNY", net_minor=NET)
    inp = StatementInput(statement=ref, cycle_id="2026-11-30", remind_seconds=1)
    # Statement 41 under a suffix of its own: every test starts its own flow on the shared dev server.
    handle = await client.start_workflow(
        StatementWorkflow.run, inp, id=statement_workflow_id(flow.workflow_id("41")), task_queue=flow.queue
    )
    await eventually(lambda: at_stage(handle, "AWAITING_FINANCE_APPROVAL"))
    return handle


def decide(handle: WorkflowHandle[Any, Any], kind: str, by: str, key_id: int) -> Any:
    return handle.execute_update(
        StatementWorkflow.decide, args=[kind, Decision(statement_id=41, by=by, by_key_id=key_id)]
    )


def adjust(handle: WorkflowHandle[Any, Any], amount_minor: int, by: str, key_id: int) -> Any:
    record = AdjustmentRecord(statement_id=41, amount_minor=amount_minor, reason="goodwill", by=by, by_key_id=key_id)
    return handle.execute_update(StatementWorkflow.adjust, record)


async def test_the_adjuster_cannot_approve_and_an_adjustment_stays_within_the_split(temporal: Client) -> None:
    statements = Statements()
    flow = Flow(temporal, StatementWorkflow, statements.doubles())
    async with flow.worker:
        handle = await start(temporal, flow)
        assert await refusal_of(adjust(handle, COMMISSION + 1, "alice", 1)) == Refusal.ADJUSTMENT_TOO_LARGE
        assert await refusal_of(adjust(handle, COMMISSION, "alice", 1)) is None
        assert await refusal_of(decide(handle, "approve", " ALICE", 2)) == Refusal.SAME_PERSON  # her other key
        assert await refusal_of(decide(handle, "settle", "bob", 3)) == Refusal.BAD_DECISION
        approved = await decide(handle, "approve", "bob", 3)
        result = await handle.result()
    assert approved.status is StatementStatus.APPROVED and result.by == "bob"
    assert statements.names() == ["settlement.adjust", "settlement.adjust", "settlement.approve"]


async def test_a_statement_whose_posting_fails_can_only_be_rejected(temporal: Client) -> None:
    statements = Statements(posting_fails=True)
    flow = Flow(temporal, StatementWorkflow, statements.doubles())
    async with flow.worker:
        handle = await start(temporal, flow)
        failed = await decide(handle, "approve", "bob", 3)
        assert failed.status is StatementStatus.FAILED and failed.failure == "bad promoter"
        await eventually(lambda: at_stage(handle, "POSTING_FAILED"))
        assert await refusal_of(decide(handle, "approve", "carol", 4)) == Refusal.STATEMENT_FAILED
        assert await refusal_of(adjust(handle, 10, "carol", 4)) == Refusal.NOT_PENDING
        rejected = await decide(handle, "reject", "carol", 4)
        result = await handle.result()
    assert rejected.status is StatementStatus.REJECTED and result.status is StatementStatus.REJECTED
    assert statements.names() == ["settlement.approve", "settlement.reject"]
