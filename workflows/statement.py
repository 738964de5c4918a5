"""StatementWorkflow (`statement-{id}`): one merchant's settlement statement waiting for finance.

Finance may adjust it, approve it (never the person who adjusted it: maker-checker) or reject it
(its orders return to the next cycle). A reminder goes out when it waits too long. A statement whose
entry cannot be posted (e.g. an invalid promoter id) waits at POSTING_FAILED with the reason: finance can
only reject it, and the cycle's other statements go on without it.
"""

from __future__ import annotations

from temporalio import workflow

with workflow.unsafe.imports_passed_through():
    from activities.refusals import carried
    from activities.statements import StatementActivities
    from domain.maker_checker import Who, check_statement_approver
    from domain.refusals import Refusal
    from domain.settlement import (
        AdjustmentRecord,
        Decision,
        StatementInput,
        StatementOutcome,
        StatementStatus,
    )
    from workflows import stages
    from workflows.calls import db_step, refused, wait_until


@workflow.defn(name="StatementWorkflow")
class StatementWorkflow:
    def __init__(self) -> None:
        self._decision: tuple[str, Decision] | None = None
        self._adjusted_by_key_id: int | None = None
        self._adjusted_by: str | None = None  # the person (from the API), compared with the approver
        self._adjusting = False
        self._outcome: StatementOutcome | None = None
        self._failure: str | None = None
        # One result per decision taken, so an update waiting on its own decision never misses it when a
        # failed approval sends the statement back to waiting.
        self._results: list[StatementOutcome] = []

    @workflow.update
    async def adjust(self, record: AdjustmentRecord) -> None:
        self._adjusting = True
        try:
            await db_step(StatementActivities.adjust, record)
        finally:
            self._adjusting = False
        self._adjusted_by_key_id, self._adjusted_by = record.by_key_id, record.by
        stages.say(f"{self._waiting()}; adjusted by {record.amount_minor} by {record.by}: {record.reason}")

    @adjust.validator
    def _check_adjust(self, record: AdjustmentRecord) -> None:
        if self._decision is not None or self._adjusting:
            raise refused(Refusal.NOT_PENDING, "the statement is being decided; it can no longer be adjusted")
        if self._failure is not None:
            raise refused(Refusal.NOT_PENDING, f"the statement failed ({self._failure}); it can only be rejected")

    @workflow.update
    async def decide(self, kind: str, decision: Decision) -> StatementOutcome:
        mine = len(self._results)
        self._decision = (kind, decision)
        await workflow.wait_condition(lambda: len(self._results) > mine)
        return self._results[mine]

    @decide.validator
    def _check_decide(self, kind: str, decision: Decision) -> None:
        if kind not in ("approve", "reject"):
            raise refused(Refusal.BAD_DECISION, f"unknown decision {kind!r}")
        if self._decision is not None or self._adjusting:
            raise refused(Refusal.NOT_PENDING, "the statement has already been decided")
        if kind == "approve" and self._failure is not None:
            raise refused(Refusal.STATEMENT_FAILED, f"the statement failed ({self._failure}); it can only be rejected")
        # (Validators do not run on replay, so this check needs no patch.)
        if kind == "approve":
            with carried():
                check_statement_approver(
                    Who(self._adjusted_by, self._adjusted_by_key_id), Who(decision.by, decision.by_key_id)
                )

    @workflow.run
    async def run(self, inp: StatementInput) -> StatementOutcome:
        self._inp = inp
        st = inp.statement
        stages.identify("settlement", merchant_id=st.merchant_id, amount_minor=st.net_minor)
        self._since = workflow.now()
        self._failure = st.failure
        if self._failure is None:
            stages.enter("AWAITING_FINANCE_APPROVAL", self._waiting())
        else:
            stages.enter("POSTING_FAILED", self._waiting())
        while True:
            kind, decision = await self._next_decision(inp)
            activity = StatementActivities.approve if kind == "approve" else StatementActivities.reject
            outcome = await db_step(activity, decision)
            self._results.append(outcome)
            if outcome.status is not StatementStatus.FAILED:
                break
            # The approval could not be posted: the statement now waits for finance to reject it.
            self._failure, self._decision, self._since = outcome.failure, None, workflow.now()
            stages.enter("POSTING_FAILED", self._waiting())
        self._outcome = outcome
        status = outcome.status.value
        done = f"statement {st.statement_id} of merchant {st.merchant_id}: {status.lower()} by {decision.by}"
        stages.enter(status, done)
        await workflow.wait_condition(workflow.all_handlers_finished)
        return outcome

    async def _next_decision(self, inp: StatementInput) -> tuple[str, Decision]:
        reminders = 0
        while not await wait_until(lambda: self._decision is not None, inp.remind_seconds):
            reminders += 1
            stages.say(f"{self._waiting()}; reminder {reminders} sent to finance")
        assert self._decision is not None
        return self._decision

    def _waiting(self) -> str:
        st = self._inp.statement
        failed = f"; its posting failed ({self._failure}): reject it" if self._failure is not None else ""
        return (
            f"statement {st.statement_id} of merchant {st.merchant_id} in cycle {self._inp.cycle_id}: net "
            f"{st.net_minor} {st.currency}, waiting for finance since {self._since:%Y-%m-%d %H:%M:%S} UTC{failed}"
        )


__all__ = ["StatementStatus", "StatementWorkflow"]
