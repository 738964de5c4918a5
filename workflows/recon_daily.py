"""ReconDailyWorkflow (`recon-daily-…`, started by the Temporal Schedule `recon-daily`): reconcile each
source's statement of the previous business day (Asia/Shanghai), one ReconciliationWorkflow per source.

A Schedule's action carries a fixed input, so the day is computed here from the flow's own clock. A
source's run of that day already going (finance started it) is joined, not repeated: its id is the
business key `recon-{source}-{day}`.
"""

from __future__ import annotations

from datetime import timedelta

from temporalio import workflow
from temporalio.exceptions import ChildWorkflowError, WorkflowAlreadyStartedError

with workflow.unsafe.imports_passed_through():
    from domain.recon.lines import SHANGHAI
    from domain.recon.runs import DailyInput, DailyResult, ReconInput, ReconResult
    from workflows import stages
    from workflows.ids import recon_workflow_id
    from workflows.reconciliation import ReconciliationWorkflow


@workflow.defn(name="ReconDailyWorkflow")
class ReconDailyWorkflow:
    @workflow.run
    async def run(self, inp: DailyInput) -> DailyResult:
        day = (workflow.now().astimezone(SHANGHAI) - timedelta(days=1)).date()
        stages.identify("reconciliation")
        stages.enter("RECONCILING", f"reconciling {', '.join(inp.sources)} of {day}")
        handles = {}
        outcome: dict[str, str] = {}
        for source in inp.sources:
            run = ReconInput(source=source, bill_date=day, discrepancy_terms=inp.discrepancy_terms)
            try:
                handles[source.value] = await workflow.start_child_workflow(
                    ReconciliationWorkflow.run,
                    run,
                    id=recon_workflow_id(source, day),
                    parent_close_policy=workflow.ParentClosePolicy.ABANDON,
                )
            except WorkflowAlreadyStartedError:
                outcome[source.value] = "ALREADY_RUNNING"
        for source_name, handle in handles.items():
            try:
                result: ReconResult = await handle
                outcome[source_name] = result.status.value
            except ChildWorkflowError as err:
                outcome[source_name] = f"FAILED: {err.cause or err}"
        stages.enter("DONE", f"{day}: {outcome}")
        return DailyResult(bill_date=day.isoformat(), runs=outcome)
