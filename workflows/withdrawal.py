"""WithdrawalWorkflow (`withdrawal-{id}`): a merchant's money from its available balance to its bank account.

Started by the API with update-with-start, so the merchant learns at once whether the money was frozen
(or why not). Large amounts wait for finance; then the withdrawal is QUEUED and the payout batch flow
(`payout-batcher`) carries it to the bank and signals back what the bank answered. A payout the bank
never answers is held as UNKNOWN (still frozen) until finance resolves it with the bank's confirmation.
"""

from __future__ import annotations

from temporalio import workflow
from temporalio.exceptions import ActivityError, ApplicationError, FailureError

with workflow.unsafe.imports_passed_through():
    from activities.withdrawals import WithdrawalActivities
    from domain.refusals import Refusal
    from domain.withdrawals import (
        Decision,
        DecisionRecord,
        PayoutOutcome,
        Resolution,
        WithdrawalInput,
        WithdrawalOpened,
        WithdrawalResult,
        WithdrawalStatus,
        confirmation_refusal,
    )
    from workflows import policies, stages
    from workflows.calls import db_step, passed_on, refused, wait_until
    from workflows.ids import PAYOUT_BATCHER_WORKFLOW_ID

# Runs that started before it drop a bank result that came together with finance's resolution (replay).
COMPARE_LEFTOVERS = "withdrawal-compare-leftover-results"
# Runs that started before it took one finance person's resolution of an UNKNOWN payout as final.
TWO_PERSON_RESOLVE = "withdrawal-two-person-resolve"
# Runs that started before it ended when a retried `open` found the payout already in the batcher's hands.
FOLLOW_REOPENED = "withdrawal-follow-reopened"


@workflow.defn(name="WithdrawalWorkflow")
class WithdrawalWorkflow:
    def __init__(self) -> None:
        self._opened: WithdrawalOpened | None = None
        self._refusal: ApplicationError | None = None
        self._status: WithdrawalStatus | None = None
        self._decision: Decision | None = None
        self._resolution: Resolution | None = None
        self._proposal: Resolution | None = None
        self._inbox: list[PayoutOutcome] = []
        self._done: WithdrawalResult | None = None
        self._reason: str | None = None

    @workflow.update
    async def opened(self) -> WithdrawalOpened:
        await workflow.wait_condition(lambda: self._opened is not None or self._refusal is not None)
        if self._refusal is not None:
            raise self._refusal
        assert self._opened is not None
        return self._opened

    @workflow.update
    async def decide(self, decision: Decision) -> WithdrawalResult:
        self._decision = decision
        await workflow.wait_condition(lambda: self._status is not WithdrawalStatus.PENDING_APPROVAL)
        return self._result()

    @decide.validator
    def _check_decide(self, decision: Decision) -> None:
        if self._status is not WithdrawalStatus.PENDING_APPROVAL or self._decision is not None:
            raise refused(Refusal.NOT_AWAITING_APPROVAL, "this withdrawal is not waiting for finance's approval")

    @workflow.update
    async def resolve(self, resolution: Resolution) -> WithdrawalResult:
        if self._proposal is None and workflow.patched(TWO_PERSON_RESOLVE):
            # The first finance person proposes; the money moves when a second one confirms.
            self._proposal = resolution
            stages.say(
                f"the bank never answered for payout {self._inp.withdrawal_id}; {resolution.by} proposes "
                f"{resolution.outcome} ({resolution.reason}), waiting for a second finance person to confirm"
            )
            return self._result()
        if self._proposal is not None:
            p = self._proposal
            reason = f"{resolution.reason} (proposed by {p.by}: {p.reason}; confirmed by {resolution.by})"
            resolution = resolution.model_copy(update={"reason": reason, "bank_ref": resolution.bank_ref or p.bank_ref})
        self._resolution = resolution
        await workflow.wait_condition(lambda: self._done is not None)
        return self._result()

    @resolve.validator
    def _check_resolve(self, resolution: Resolution) -> None:
        if self._status is not WithdrawalStatus.UNKNOWN or self._resolution is not None or self._done is not None:
            raise refused(Refusal.NOT_UNKNOWN, "only a withdrawal whose payout result is UNKNOWN can be resolved")
        refusal = confirmation_refusal(self._proposal, resolution) if self._proposal is not None else None
        if refusal is not None:
            raise refused(refusal.code, refusal.detail)

    @workflow.signal(name="payout")
    def payout(self, outcome: PayoutOutcome) -> None:
        self._inbox.append(outcome)

    @workflow.run
    async def run(self, inp: WithdrawalInput) -> WithdrawalResult:
        self._inp = inp
        stages.identify("withdrawal", merchant_id=inp.merchant_id, amount_minor=inp.amount_minor)
        stages.enter("OPENING", f"checking merchant {inp.merchant_id} may withdraw {inp.amount_minor}")
        try:
            self._opened = await db_step(WithdrawalActivities.open, inp)
        except ActivityError as err:
            self._refusal = passed_on(err)
            stages.enter("REFUSED", self._refusal.message)
            await workflow.wait_condition(workflow.all_handlers_finished)
            return WithdrawalResult(withdrawal_id=inp.withdrawal_id, status="REFUSED", reason=self._refusal.message)
        self._status = self._opened.status
        if self._status is WithdrawalStatus.PENDING_APPROVAL:
            await self._await_finance()
        # A retried `open` (the worker died after its first attempt committed) answers the withdrawal as it
        # is now: the batcher may already have submitted it, and the bank's answer must still be followed.
        in_flight = (WithdrawalStatus.SUBMITTED, WithdrawalStatus.UNKNOWN)
        if self._status is WithdrawalStatus.QUEUED or (self._status in in_flight and workflow.patched(FOLLOW_REOPENED)):
            await self._through_bank()
        self._done = self._result()
        await workflow.wait_condition(workflow.all_handlers_finished)
        return self._done

    async def _await_finance(self) -> None:
        inp = self._inp
        waiting = (
            f"withdrawal {inp.withdrawal_id} of {inp.amount_minor} by merchant {inp.merchant_id} is frozen and "
            "waits for finance to approve or reject it"
        )
        stages.enter("AWAITING_FINANCE_APPROVAL", waiting)
        reminders = 0
        while not await wait_until(lambda: self._decision is not None, inp.terms.approval_remind_seconds):
            reminders += 1
            stages.say(f"{waiting} (reminder {reminders})")
        decision = self._decision
        assert decision is not None
        self._status = await db_step(
            WithdrawalActivities.decide, DecisionRecord(withdrawal_id=inp.withdrawal_id, decision=decision)
        )
        if self._status is WithdrawalStatus.REJECTED:
            self._reason = decision.note
            stages.enter("REJECTED", f"rejected by {decision.by}: {decision.note}; the money is available again")

    async def _through_bank(self) -> None:
        inp = self._inp
        if self._status is WithdrawalStatus.QUEUED:
            waiting = f"withdrawal {inp.withdrawal_id} of {inp.amount_minor} waits for the next payout batch"
            stages.enter("QUEUED", waiting)
            try:  # a hint only: the batcher also finds queued withdrawals in the database at every tick
                # Named, not referenced: workflows/payout_batch.py imports this module to signal back.
                await workflow.get_external_workflow_handle(PAYOUT_BATCHER_WORKFLOW_ID).signal("queued")
            except FailureError:
                workflow.logger.warning("payout batcher not running; the withdrawal waits for its next start")
        else:
            stages.enter(str(self._status), f"withdrawal {inp.withdrawal_id} is with the bank, waiting for its result")
        while self._status is not WithdrawalStatus.PAID and self._status is not WithdrawalStatus.FAILED:
            await workflow.wait_condition(lambda: bool(self._inbox) or self._resolution is not None)
            if self._resolution is not None:
                r = self._resolution
                outcome = PayoutOutcome(
                    withdrawal_id=inp.withdrawal_id,
                    status=r.outcome,
                    bank_ref=r.bank_ref,
                    reason=r.reason or None,
                    resolved_by=r.by,
                    resolved_by_key_id=r.by_key_id,  # for the audit row written with the outcome
                )
            else:
                outcome = self._inbox.pop(0)
            if outcome.status == "SUBMITTED":
                if self._status is WithdrawalStatus.QUEUED:
                    self._status = WithdrawalStatus.SUBMITTED
                    stages.enter("SUBMITTED", f"in payout batch {outcome.batch_id}, waiting for the bank's result")
                continue
            if outcome.status == "UNKNOWN" and self._status is WithdrawalStatus.UNKNOWN:
                continue
            self._status = await self._act_outcome(outcome)
            self._reason = outcome.reason
            if self._status is WithdrawalStatus.UNKNOWN:
                stages.enter(
                    "UNKNOWN",
                    f"the bank has not answered for payout {inp.withdrawal_id} in batch {outcome.batch_id}; the money "
                    "stays frozen until finance resolves it with the bank's confirmation",
                )
            else:
                how = f"resolved by {outcome.resolved_by}" if outcome.resolved_by else f"batch {outcome.batch_id}"
                detail = f"bank ref {outcome.bank_ref}" if self._status is WithdrawalStatus.PAID else outcome.reason
                stages.enter(
                    self._status.value, f"withdrawal {inp.withdrawal_id}: {self._status.value} ({how}; {detail})"
                )
        leftovers = [o for o in self._inbox if o.status in ("PAID", "FAILED")]
        if leftovers and workflow.patched(COMPARE_LEFTOVERS):
            for o in leftovers:  # the bank answered as finance resolved: compared and surfaced, never posted
                await db_step(WithdrawalActivities.compare_late_result, o)

    async def _act_outcome(self, outcome: PayoutOutcome) -> WithdrawalStatus:
        status: WithdrawalStatus = await workflow.execute_activity_method(
            WithdrawalActivities.record_outcome,
            args=[outcome, self._inp.terms.payout_bank],
            start_to_close_timeout=policies.DB_TIMEOUT,
            retry_policy=policies.DB,
        )
        return status

    def _result(self) -> WithdrawalResult:
        return WithdrawalResult(
            withdrawal_id=self._inp.withdrawal_id,
            status=(self._status or WithdrawalStatus.PENDING_APPROVAL).value,
            reason=self._reason,
            resolution_proposed=self._proposal.outcome if self._proposal and self._open_unknown() else None,
            resolution_proposed_by=self._proposal.by if self._proposal and self._open_unknown() else None,
        )

    def _open_unknown(self) -> bool:
        return self._status is WithdrawalStatus.UNKNOWN and self._resolution is None
