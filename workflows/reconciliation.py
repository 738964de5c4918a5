"""ReconciliationWorkflow (`recon-{source}-{bill_date}`): one party's statement of one business day
against the platform's records.

Started by the API with update-with-start (`started` answers the run id at once). It opens a run,
downloads the statement (waiting out "Bill Creating"; "No Bill Exist" ends the run EMPTY) unless finance
uploaded it, keeps the raw file once, then parses, loads and classifies it in the database. A statement
that cannot be had or is refused (malformed, truncated, totals that do not add up) ends the run FAILED
with where and why.
"""

from __future__ import annotations

from temporalio import workflow
from temporalio.exceptions import ActivityError, ApplicationError, FailureError, WorkflowAlreadyStartedError

with workflow.unsafe.imports_passed_through():
    from activities.discrepancies import DiscrepancyActivities
    from activities.recon import ReconActivities
    from domain.recon.discrepancy import DiscrepancyInput
    from domain.recon.runs import DiscrepancyTerms, ReconInput, ReconResult, ReconStarted, RunStatus
    from workflows import policies, stages
    from workflows.calls import db_step
    from workflows.discrepancy import DiscrepancyWorkflow
    from workflows.ids import discrepancy_workflow_id

# Runs recorded before a matched day booked its fees and started a flow per new discrepancy.
DISCREPANCY_FLOWS = "recon-discrepancy-flows"

# Refusals that end the run FAILED instead of failing the flow (the statement is at fault, not us).
STATEMENT_FAULTS = ("STATEMENT_REFUSED", "STATEMENT_UNAVAILABLE")


def _refusal(exc: ActivityError) -> ApplicationError | None:
    cause = exc.cause
    return cause if isinstance(cause, ApplicationError) and cause.type in STATEMENT_FAULTS else None


@workflow.defn(name="ReconciliationWorkflow")
class ReconciliationWorkflow:
    def __init__(self) -> None:
        self._started: ReconStarted | None = None

    @workflow.update
    async def started(self) -> ReconStarted:
        await workflow.wait_condition(lambda: self._started is not None)
        assert self._started is not None
        return self._started

    @workflow.run
    async def run(self, inp: ReconInput) -> ReconResult:
        info = workflow.info()
        stages.identify("reconciliation")
        run_id: int = await workflow.execute_activity_method(
            ReconActivities.open,
            args=[inp, f"{info.workflow_id}/{info.run_id}"],
            start_to_close_timeout=policies.DB_TIMEOUT,
            retry_policy=policies.DB,
        )
        self._started = ReconStarted(run_id=run_id, workflow_id=info.workflow_id)
        try:
            if inp.file_sha256 is None:  # an uploaded statement is already kept
                stages.enter("DOWNLOADING", f"downloading the {inp.source} statement of {inp.bill_date}")
                fetched = await workflow.execute_activity_method(
                    ReconActivities.fetch,
                    run_id,
                    start_to_close_timeout=policies.STATEMENT_DOWNLOAD_TIMEOUT,
                    schedule_to_close_timeout=policies.STATEMENT_DOWNLOAD_WITHIN,
                    retry_policy=policies.STATEMENT_DOWNLOAD,
                )
                if fetched.status is not RunStatus.RUNNING:
                    return fetched
            stages.enter("MATCHING", f"loading and matching {inp.source} {inp.bill_date}")
            result: ReconResult = await workflow.execute_activity_method(
                ReconActivities.match,
                run_id,
                start_to_close_timeout=policies.RECON_MATCH_TIMEOUT,
                retry_policy=policies.DB,
            )
        except ActivityError as exc:
            refusal = _refusal(exc)
            if refusal is None:
                raise
            result = await workflow.execute_activity_method(
                ReconActivities.fail,
                args=[run_id, refusal.message],
                start_to_close_timeout=policies.DB_TIMEOUT,
                retry_policy=policies.DB,
            )
        if result.status is RunStatus.MATCHED and inp.discrepancy_terms and workflow.patched(DISCREPANCY_FLOWS):
            await self._follow_up(run_id, inp.discrepancy_terms)
        stages.enter(result.status.value, f"{result.lines} lines, found {result.counts or 'nothing'}")
        return result

    async def _follow_up(self, run_id: int, terms: DiscrepancyTerms) -> None:
        """Book the day's fees; start a flow for each discrepancy this run found first (a re-run finds
        none new, and a flow's id is its discrepancy's, so none starts twice); wake the HELD SHORTs this
        statement carried."""
        stages.enter("FOLLOWING_UP", f"booking fees and starting discrepancy flows of run {run_id}")
        await db_step(DiscrepancyActivities.book_fees, run_id)
        flows = await db_step(DiscrepancyActivities.run_flows, run_id)
        for discrepancy_id in flows.new:
            try:
                await workflow.start_child_workflow(
                    DiscrepancyWorkflow.run,
                    DiscrepancyInput(discrepancy_id=discrepancy_id, terms=terms),
                    id=discrepancy_workflow_id(discrepancy_id),
                    parent_close_policy=workflow.ParentClosePolicy.ABANDON,
                )
            except WorkflowAlreadyStartedError:
                pass
        for discrepancy_id in flows.resolved:
            try:
                await workflow.get_external_workflow_handle(discrepancy_workflow_id(discrepancy_id)).signal(
                    DiscrepancyWorkflow.recheck
                )
            except FailureError:
                workflow.logger.warning("discrepancy flow %s is not running", discrepancy_id)
