"""SettlementWorkflow on its own (the steps of patch settlement-cycle-v2, which every new cycle takes): a
cutoff settled already, an empty cycle, the claim in pages, a failed verification (its claims released,
nothing approved), statements auto-approved or waiting for finance in StatementWorkflow children, and
continue-as-new after each page of children."""

from __future__ import annotations

import asyncio
import random
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import pytest
from temporalio import activity
from temporalio.client import Client, WorkflowFailureError, WorkflowHandle
from temporalio.exceptions import ActivityError, ApplicationError

from domain.settlement import (
    BuildResult,
    CycleInput,
    CycleOpen,
    CycleResult,
    CycleState,
    CycleStatus,
    Decided,
    Decision,
    SettlementTerms,
    StatementRef,
    cycle_id_for,
)
from tests.workflows.conftest import Calls, Flow, answered, at_stage, eventually
from tests.workflows.test_statement_flow import Statements
from workflows.settlement import SettlementWorkflow
from workflows.statement import StatementWorkflow

CUTOFF = datetime(2026, 11, 30, 16, 0, tzinfo=UTC)
PAGE_SIZE = 7


@dataclass
class Ledger(Calls):
    """The cycle's records as the doubles keep them; `statements` holds what the children were asked."""

    status: CycleStatus = CycleStatus.RUNNING  # what opening the cycle finds
    orders: int = 0
    auto: int = 0
    pending: list[StatementRef] = field(default_factory=list)  # statements over the auto-approval bound
    verify_fails: bool = False
    statements: Statements = field(default_factory=Statements)

    def doubles(self) -> list[Any]:
        @activity.defn(name="settlement.open_cycle")
        async def open_cycle(c: CycleOpen) -> CycleState:
            self.add("settlement.open_cycle", c)
            return CycleState(cycle_id=c.cycle_id, status=self.status, orders=self.orders, statements=self.total())

        @activity.defn(name="settlement.claim")
        async def claim(cycle_id: str, page_size: int) -> int:
            self.add("settlement.claim", (cycle_id, page_size))
            return self.orders

        @activity.defn(name="settlement.aggregate")
        async def aggregate(cycle_id: str) -> BuildResult:
            self.add("settlement.aggregate", cycle_id)
            return BuildResult(orders=self.orders, statements=self.total())

        @activity.defn(name="settlement.verify")
        async def verify(cycle_id: str) -> int:
            self.add("settlement.verify", cycle_id)
            if self.verify_fails:
                raise ApplicationError("entries do not balance; claims released", type="CHECK", non_retryable=True)
            return self.orders

        @activity.defn(name="settlement.auto_approve")
        async def auto_approve(cycle_id: str, max_net_minor: int) -> int:
            self.add("settlement.auto_approve", (cycle_id, max_net_minor))
            return self.auto

        @activity.defn(name="settlement.pending_page")
        async def pending_page(cycle_id: str, after_id: int, limit: int) -> list[StatementRef]:
            self.add("settlement.pending_page", after_id)
            return [s for s in self.pending if s.statement_id > after_id][:limit]

        @activity.defn(name="settlement.await_decided")
        async def await_decided(cycle_id: str) -> Decided:
            # As the real one: wait until no statement of the cycle waits for finance.
            self.add("settlement.await_decided", cycle_id)
            while len(self.statements.calls) < len(self.pending):
                activity.heartbeat()
                await asyncio.sleep(0.05)
            rejected = self.statements.names().count("settlement.reject")
            return Decided(approved=self.auto + len(self.pending) - rejected, rejected=rejected)

        @activity.defn(name="settlement.close_cycle")
        async def close_cycle(cycle_id: str) -> None:
            self.add("settlement.close_cycle", cycle_id)

        cycle = [open_cycle, claim, aggregate, verify, auto_approve, pending_page, await_decided, close_cycle]
        return cycle + self.statements.doubles()

    def total(self) -> int:
        return self.auto + len(self.pending)


def refs(n: int) -> list[StatementRef]:
    """`n` statements waiting for finance, with ids no other test's children have."""
    first = random.randrange(10**6, 10**9)
    return [StatementRef(statement_id=first + i, merchant_id="m-1", currency="CNY", net_minor=90_000) for i in range(n)]


async def start(flow: Flow, children_page: int = 200) -> WorkflowHandle[Any, CycleResult]:
    terms = SettlementTerms(
        auto_approve_max_minor=50_000, remind_seconds=60, page_size=PAGE_SIZE, children_page=children_page
    )
    inp = CycleInput(cutoff=CUTOFF, triggered_by="finance", terms=terms)
    return await flow.client.start_workflow(
        SettlementWorkflow.run, inp, id=flow.workflow_id("settlement"), task_queue=flow.queue
    )


def settlement(ledger: Ledger, client: Client) -> Flow:
    return Flow(client, SettlementWorkflow, ledger.doubles(), others=[StatementWorkflow])


CYCLE = cycle_id_for(CUTOFF)
STEPS = [
    "settlement.open_cycle",
    "settlement.claim",
    "settlement.aggregate",
    "settlement.verify",
    "settlement.auto_approve",
]


async def test_a_cutoff_settled_already_settles_nothing_again(temporal: Client) -> None:
    ledger = Ledger(status=CycleStatus.CLOSED, orders=4, auto=2)
    flow = settlement(ledger, temporal)
    async with flow.worker:
        result = await answered((await start(flow)).result())
    assert (result.status, result.orders, result.statements, result.auto_approved) == (CycleStatus.CLOSED, 4, 2, 0)
    assert ledger.names() == ["settlement.open_cycle"]


async def test_an_empty_cycle_claims_in_pages_and_closes_with_nothing_to_decide(temporal: Client) -> None:
    ledger = Ledger()
    flow = settlement(ledger, temporal)
    async with flow.worker:
        handle = await start(flow)
        result = await answered(handle.result())
        assert await at_stage(handle, "CLOSED")
    assert result == CycleResult(cycle_id=CYCLE, status=CycleStatus.CLOSED, orders=0, statements=0, auto_approved=0)
    assert ledger.names() == [
        *STEPS,
        "settlement.pending_page",
        "settlement.await_decided",
        "settlement.close_cycle",
    ]
    assert ledger.of("settlement.claim") == [(CYCLE, PAGE_SIZE)]
    assert ledger.of("settlement.open_cycle")[0].cutoff == CUTOFF


async def test_a_cycle_failing_its_checks_fails_before_approving_anything(temporal: Client) -> None:
    ledger = Ledger(orders=3, auto=1, verify_fails=True)
    flow = settlement(ledger, temporal)
    async with flow.worker:
        handle = await start(flow)
        with pytest.raises(WorkflowFailureError) as failed:
            await answered(handle.result())
        assert await at_stage(handle, "FAILED")
    cause = failed.value.cause
    assert isinstance(cause, ActivityError) and isinstance(cause.cause, ApplicationError)
    assert cause.cause.type == "CHECK"
    assert ledger.names() == STEPS[:4]  # nothing auto-approved, no statement started, the cycle not closed


async def test_statements_over_the_bound_wait_for_finance_in_children_the_others_are_auto_approved(
    temporal: Client,
) -> None:
    ledger = Ledger(orders=9, auto=2, pending=refs(2))
    flow = settlement(ledger, temporal)
    approve, reject = ledger.pending
    async with flow.worker:
        handle = await start(flow)
        await eventually(lambda: at_stage(handle, "AWAITING_FINANCE_APPROVAL"))
        children = [
            temporal.get_workflow_handle_for(StatementWorkflow.run, f"statement-{s.statement_id}")
            for s in (approve, reject)
        ]
        for child in children:
            await eventually(lambda child=child: at_stage(child, "AWAITING_FINANCE_APPROVAL"))
        await children[0].execute_update(
            StatementWorkflow.decide, args=["approve", Decision(statement_id=approve.statement_id, by="bob")]
        )
        await children[1].execute_update(
            StatementWorkflow.decide, args=["reject", Decision(statement_id=reject.statement_id, by="bob")]
        )
        result = await answered(handle.result())
    assert (result.statements, result.auto_approved, result.approved, result.rejected) == (4, 2, 1, 1)
    assert ledger.of("settlement.auto_approve") == [(CYCLE, 50_000)]
    assert [d.statement_id for n, d in ledger.statements.calls if n == "settlement.approve"] == [approve.statement_id]
    assert [d.statement_id for n, d in ledger.statements.calls if n == "settlement.reject"] == [reject.statement_id]


async def test_children_are_started_a_page_per_run_continuing_as_new_with_the_cursor(temporal: Client) -> None:
    ledger = Ledger(orders=3, pending=refs(3))
    flow = settlement(ledger, temporal)
    ids = [s.statement_id for s in ledger.pending]
    async with flow.worker:
        handle = await start(flow, children_page=2)
        first_run = (await handle.describe()).run_id
        children = [temporal.get_workflow_handle_for(StatementWorkflow.run, f"statement-{i}") for i in ids]
        await eventually(lambda: ledger.asked("settlement.await_decided"))
        for i, child in zip(ids, children, strict=True):
            await eventually(lambda child=child: at_stage(child, "AWAITING_FINANCE_APPROVAL"))
            await child.execute_update(StatementWorkflow.decide, args=["reject", Decision(statement_id=i, by="bob")])
        result = await answered(handle.result())
        assert (await handle.describe()).run_id != first_run
    assert ledger.of("settlement.pending_page") == [0, ids[1]]
    assert ledger.names().count("settlement.open_cycle") == 1 and ledger.names().count("settlement.verify") == 1
    assert (result.orders, result.statements, result.approved, result.rejected) == (3, 3, 0, 3)
