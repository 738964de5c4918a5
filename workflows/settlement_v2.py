"""The steps of a settlement cycle since patch `settlement-cycle-v2` (called by SettlementWorkflow.run).

Claiming and aggregation are separate activities (aggregation closes claiming under the cycle's lock,
so a timed-out claim attempt can no longer add orders that no statement covers). Statement children are
started at most `terms.children_page` per run (about 4 history events each); the cycle then continues
as new carrying the cursor, so its history stays bounded with 10k statements. The children are
abandoned on continue-as-new (they outlive the run that started them) and the last run waits for every
statement to be decided in one heartbeating activity rather than awaiting each child. Deterministic.
"""

from __future__ import annotations

from temporalio import workflow
from temporalio.exceptions import ActivityError

with workflow.unsafe.imports_passed_through():
    from activities.settlement import SettlementActivities
    from domain.settlement import (
        CycleInput,
        CycleOpen,
        CycleResult,
        CycleResume,
        CycleStatus,
        StatementInput,
        cycle_id_for,
    )
    from workflows import policies, stages
    from workflows.ids import statement_workflow_id
    from workflows.statement import StatementWorkflow


async def run_v2(inp: CycleInput) -> CycleResult:
    assert inp.cutoff is not None
    cutoff = inp.cutoff
    cycle_id = cycle_id_for(cutoff)
    stages.identify("settlement")
    resume = inp.resume
    if resume is None:
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
        await workflow.execute_activity_method(
            SettlementActivities.claim,
            args=[cycle_id, inp.terms.page_size],
            start_to_close_timeout=policies.PAGED_TIMEOUT,
            heartbeat_timeout=policies.HEARTBEAT_TIMEOUT,
            retry_policy=policies.DB,
        )
        built = await workflow.execute_activity_method(
            SettlementActivities.aggregate,
            cycle_id,
            start_to_close_timeout=policies.DB_TIMEOUT,
            retry_policy=policies.DB,
        )
        stages.enter("VERIFYING", f"cycle {cycle_id}: {built.orders} orders in {built.statements} statements")
        try:
            released = await workflow.execute_activity_method(
                SettlementActivities.verify,
                cycle_id,
                start_to_close_timeout=policies.VERIFY_TIMEOUT,
                heartbeat_timeout=policies.HEARTBEAT_TIMEOUT,  # a dead worker's attempt is retried within seconds
                retry_policy=policies.DB,
            )
        except ActivityError as err:
            # Nothing was posted and the cycle's claims are released: the orders settle in the next cycle.
            stages.enter("FAILED", f"cycle {cycle_id} failed its checks, claims released: {err.cause or err}")
            raise

        auto = await workflow.execute_activity_method(
            SettlementActivities.auto_approve,
            args=[cycle_id, inp.terms.auto_approve_max_minor],
            start_to_close_timeout=policies.PAGED_TIMEOUT,
            heartbeat_timeout=policies.HEARTBEAT_TIMEOUT,
            retry_policy=policies.DB,
        )
        resume = CycleResume(
            after_id=0, orders=built.orders, statements=built.statements, auto_approved=auto, released=released
        )
    page = await workflow.execute_activity_method(
        SettlementActivities.pending_page,
        args=[cycle_id, resume.after_id, inp.terms.children_page],
        start_to_close_timeout=policies.DB_TIMEOUT,
        retry_policy=policies.DB,
    )
    for ref in page:
        await workflow.start_child_workflow(
            StatementWorkflow.run,
            StatementInput(statement=ref, cycle_id=cycle_id, remind_seconds=inp.terms.remind_seconds),
            id=statement_workflow_id(ref.statement_id),
            parent_close_policy=workflow.ParentClosePolicy.ABANDON,
        )
    if len(page) == inp.terms.children_page:
        stages.enter("STARTING_STATEMENTS", f"cycle {cycle_id}: started statements up to {page[-1].statement_id}")
        nxt = resume.model_copy(update={"after_id": page[-1].statement_id})
        workflow.continue_as_new(inp.model_copy(update={"resume": nxt}))
    waiting = resume.statements - resume.auto_approved
    stages.enter(
        "AWAITING_FINANCE_APPROVAL" if waiting else "CLOSING",
        f"cycle {cycle_id}: {waiting} of {resume.statements} statements wait for finance "
        "(see the StatementWorkflow children)",
    )
    decided = await workflow.execute_activity_method(
        SettlementActivities.await_decided,
        cycle_id,
        start_to_close_timeout=policies.DECIDED_TIMEOUT,
        heartbeat_timeout=policies.DECIDED_HEARTBEAT,
        retry_policy=policies.DB,
    )
    await workflow.execute_activity_method(
        SettlementActivities.close_cycle,
        cycle_id,
        start_to_close_timeout=policies.DB_TIMEOUT,
        retry_policy=policies.DB,
    )
    approved = decided.approved - resume.auto_approved
    stages.enter(
        "CLOSED",
        f"cycle {cycle_id}: {resume.orders} orders, {resume.statements} statements "
        f"({resume.auto_approved} auto-approved, {approved} approved, {decided.rejected} rejected), "
        f"{resume.released} released from escrow",
    )
    return CycleResult(
        cycle_id=cycle_id,
        status=CycleStatus.CLOSED,
        orders=resume.orders,
        statements=resume.statements,
        auto_approved=resume.auto_approved,
        approved=approved,
        rejected=decided.rejected,
    )
