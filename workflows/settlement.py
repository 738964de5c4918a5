"""SettlementWorkflow (`settlement-{cycle}`): one settlement cycle, from claiming orders to closing.

Started by the daily Temporal Schedule (cutoff: when it starts) or by finance with a cutoff. The
cycle id comes from the cutoff and the database keeps one cycle per cutoff, so a second start for
the same cutoff settles nothing twice. Statements over the auto-approval threshold each wait in
their own StatementWorkflow child, so operators can find every one waiting for finance.

Since patch CYCLE_V2 a cycle claims and aggregates in separate steps, and starts its statement
children a bounded page per run, continuing as new with the cursor, then waits for every statement to
be decided in one heartbeating activity: the history stays small however many statements there are.
"""

from __future__ import annotations

from temporalio import workflow

with workflow.unsafe.imports_passed_through():
    from activities.settlement import SettlementActivities
    from domain.settlement import (
        CycleInput,
        CycleOpen,
        CycleResult,
        CycleStatus,
        StatementInput,
        StatementOutcome,
        StatementStatus,
        cycle_id_for,
    )
    from workflows import policies, stages
    from workflows.ids import statement_workflow_id
    from workflows.settlement_v2 import run_v2
    from workflows.statement import StatementWorkflow

PENDING_PAGE = 500
CYCLE_V2 = "settlement-cycle-v2"


@workflow.defn(name="SettlementWorkflow")
class SettlementWorkflow:
    @workflow.run
    async def run(self, inp: CycleInput) -> CycleResult:
        cutoff = (inp.cutoff or workflow.now()).replace(microsecond=0)
        if workflow.patched(CYCLE_V2):
            return await run_v2(inp.model_copy(update={"cutoff": cutoff}))
        cycle_id = cycle_id_for(cutoff)
        stages.identify("settlement")
        stages.enter("BUILDING", f"cycle {cycle_id}: claiming orders settleable by {cutoff:%Y-%m-%d %H:%M:%S} UTC")
        state = await workflow.execute_activity_method(
            SettlementActivities.open_cycle,
            CycleOpen(cycle_id=cycle_id, cutoff=cutoff, triggered_by=inp.triggered_by),
            start_to_close_timeout=policies.DB_TIMEOUT,
            retry_policy=policies.DB,
        )
        if state.status is not CycleStatus.RUNNING:  # this cutoff was settled already
            stages.enter(state.status.value, f"cycle {state.cycle_id} had already run ({state.status.value})")
            return CycleResult(
                cycle_id=state.cycle_id,
                status=state.status,
                orders=state.orders,
                statements=state.statements,
                auto_approved=0,
            )
        built = await workflow.execute_activity_method(
            SettlementActivities.build,
            args=[cycle_id, inp.terms.page_size],
            start_to_close_timeout=policies.PAGED_TIMEOUT,
            heartbeat_timeout=policies.HEARTBEAT_TIMEOUT,
            retry_policy=policies.DB,
        )
        stages.enter("VERIFYING", f"cycle {cycle_id}: {built.orders} orders in {built.statements} statements")
        released = await workflow.execute_activity_method(
            SettlementActivities.verify,
            cycle_id,
            start_to_close_timeout=policies.VERIFY_TIMEOUT,
            retry_policy=policies.DB,
        )
        auto = await workflow.execute_activity_method(
            SettlementActivities.auto_approve,
            args=[cycle_id, inp.terms.auto_approve_max_minor],
            start_to_close_timeout=policies.PAGED_TIMEOUT,
            heartbeat_timeout=policies.HEARTBEAT_TIMEOUT,
            retry_policy=policies.DB,
        )
        waiting = await self._await_finance(cycle_id, inp)
        approved = sum(1 for o in waiting if o.status is StatementStatus.APPROVED)
        await workflow.execute_activity_method(
            SettlementActivities.close_cycle,
            cycle_id,
            start_to_close_timeout=policies.DB_TIMEOUT,
            retry_policy=policies.DB,
        )
        stages.enter(
            "CLOSED",
            f"cycle {cycle_id}: {built.orders} orders, {built.statements} statements "
            f"({auto} auto-approved, {approved} approved, {len(waiting) - approved} rejected), "
            f"{released} released from escrow",
        )
        return CycleResult(
            cycle_id=cycle_id,
            status=CycleStatus.CLOSED,
            orders=built.orders,
            statements=built.statements,
            auto_approved=auto,
            approved=approved,
            rejected=len(waiting) - approved,
        )

    async def _await_finance(self, cycle_id: str, inp: CycleInput) -> list[StatementOutcome]:
        handles = []
        after = 0
        while True:
            page = await workflow.execute_activity_method(
                SettlementActivities.pending_page,
                args=[cycle_id, after, PENDING_PAGE],
                start_to_close_timeout=policies.DB_TIMEOUT,
                retry_policy=policies.DB,
            )
            for ref in page:
                handles.append(
                    await workflow.start_child_workflow(
                        StatementWorkflow.run,
                        StatementInput(statement=ref, cycle_id=cycle_id, remind_seconds=inp.terms.remind_seconds),
                        id=statement_workflow_id(ref.statement_id),
                    )
                )
            if len(page) < PENDING_PAGE:
                break
            after = page[-1].statement_id
        if handles:
            stages.enter(
                "AWAITING_FINANCE_APPROVAL",
                f"cycle {cycle_id}: {len(handles)} statements wait for finance (see the StatementWorkflow children)",
            )
        return [await h for h in handles]
