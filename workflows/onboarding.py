"""MerchantOnboardingWorkflow (`onboarding-{merchant_id}`): from application to ACTIVE, REJECTED or EXPIRED.

The API stores each application version (numbers encrypted) before it talks to this flow, so the
flow's input, updates and history carry the merchant id and version numbers only. KYC checks are
retried through provider outages; review decisions are Updates whose validators refuse a decision
in the wrong stage, by a non-auditor, or by the first auditor at the second review.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from typing import Any

from temporalio import workflow
from temporalio.exceptions import ActivityError, ApplicationError

with workflow.unsafe.imports_passed_through():
    from activities.onboarding import OnboardingActivities, VerificationActivities
    from activities.refusals import carried
    from domain.maker_checker import Who, check_second_auditor
    from domain.merchants import (
        FINAL,
        KYC_CHECKS,
        REVIEW_STAGES,
        KycRequest,
        KycResult,
        MerchantStatus,
        MerchantView,
        OnboardingInput,
        OnboardingNotification,
        OnboardingResult,
        OnboardingTransition,
        Resubmission,
        ReviewDecision,
        Reviewer,
        ReviewInput,
        ReviewRecord,
        RiskLevel,
        Terms,
    )
    from domain.payments import PaymentEvent, PaymentEventKind
    from domain.refusals import Refusal
    from workflows import policies, stages
    from workflows.awaiting import PartyWait, Woke
    from workflows.calls import db_step, party_step, passed_on, refused, wait_until
    from workflows.onboarding_steps import MAX_DEPOSIT_ATTEMPTS, ContractAndDeposit

DONE = ("PASS", "MISMATCH")


@workflow.defn(name="MerchantOnboardingWorkflow")
class MerchantOnboardingWorkflow(ContractAndDeposit):
    def __init__(self) -> None:
        # _status is where the flow has decided to be (validators judge by it); _recorded is what the
        # database already shows (update answers wait for it).
        self._status: MerchantStatus | None = None
        self._recorded: MerchantStatus | None = None
        self._refusal: ApplicationError | None = None
        self._version = 1
        self._verified_version = 0
        self._decision: ReviewInput | None = None
        self._decided = 0
        self._reviews = 0
        self._first_reviewer: Reviewer | None = None
        self._resubmission: int | None = None
        self._kyc_inbox: list[OnboardingNotification] = []
        self._contract_inbox: list[OnboardingNotification] = []
        self._payment_no: str | None = None
        self._deposit_ready: PaymentEvent | None = None
        self._payment: PaymentEvent | None = None

    # --- what the outside world sends -----------------------------------------------------------
    @workflow.update
    async def submitted(self) -> MerchantView:
        await workflow.wait_condition(lambda: self._recorded is not None or self._refusal is not None)
        if self._refusal is not None:
            raise self._refusal
        return self._view()

    @workflow.update
    async def review(self, d: ReviewInput) -> MerchantView:
        ticket = self._decided + 1
        self._decision = d
        await workflow.wait_condition(lambda: self._decided >= ticket)
        return self._view()

    @review.validator
    def _check_review(self, d: ReviewInput) -> None:
        if d.by.role != "auditor":
            raise refused(Refusal.NOT_AN_AUDITOR, "only an auditor decides on a merchant application")
        if self._status not in REVIEW_STAGES or self._decision is not None:
            raise refused(
                Refusal.NOT_IN_REVIEW, f"the application is {self._status}, not waiting for a review decision"
            )
        first = self._first_reviewer
        if self._status is MerchantStatus.SECOND_REVIEW and first:
            with carried():
                check_second_auditor(Who(first.name, first.key_id), Who(d.by.name, d.by.key_id))

    @workflow.update
    async def resubmit(self, r: Resubmission) -> MerchantView:
        self._resubmission = r.version
        await workflow.wait_condition(lambda: self._verified_version >= r.version or self._recorded in FINAL)
        return self._view()

    @resubmit.validator
    def _check_resubmit(self, r: Resubmission) -> None:
        if self._status is not MerchantStatus.CHANGES_REQUESTED or self._resubmission is not None:
            raise refused(Refusal.NOT_AWAITING_CHANGES, f"the application is {self._status}, not waiting for changes")
        if r.version != self._version + 1:
            raise refused(Refusal.STALE_VERSION, f"expected application version {self._version + 1}, got {r.version}")

    @workflow.signal(name="notification")
    def notification(self, payload: dict[str, object]) -> None:
        """A verified KYC or e-sign callback (the API checked its signature and stored it first)."""
        try:
            n = OnboardingNotification.model_validate(payload)
        except ValueError:
            workflow.logger.warning("ignoring a notification that is not for onboarding: %s", payload)
            return
        (self._kyc_inbox if n.event_type.startswith("kyc.") else self._contract_inbox).append(n)

    @workflow.signal(name="payment_event")
    def payment_event(self, event: PaymentEvent) -> None:
        if event.payment_no != self._payment_no:
            return  # an earlier deposit payment that has since expired
        if event.kind is PaymentEventKind.READY:
            self._deposit_ready = event
        else:
            self._payment = event

    # --- the flow -------------------------------------------------------------------------------
    @workflow.run
    async def run(self, inp: OnboardingInput) -> OnboardingResult:
        self._inp = inp
        stages.identify("onboarding", merchant_id=inp.merchant_id)
        stages.enter("SUBMITTED", "recording the application")
        try:
            self._terms: Terms = await db_step(OnboardingActivities.submit, inp.merchant_id)
        except ActivityError as err:
            self._refusal = passed_on(err)
            stages.enter("REFUSED", f"not recorded: {self._refusal.message}")
            await workflow.wait_condition(workflow.all_handlers_finished)
            return OnboardingResult(
                merchant_id=inp.merchant_id, status=MerchantStatus.REJECTED, reason=self._refusal.message
            )
        self._status = self._recorded = MerchantStatus.SUBMITTED
        while True:
            findings = await self._verify()
            decision = await self._review(MerchantStatus.IN_REVIEW, findings)
            if decision.decision is ReviewDecision.APPROVE and self._terms.risk_level is RiskLevel.HIGH:
                decision = await self._review(MerchantStatus.SECOND_REVIEW, findings)
            if decision.decision is ReviewDecision.APPROVE:
                break
            if decision.decision is ReviewDecision.REJECT:
                return await self._end(MerchantStatus.REJECTED, f"rejected: {decision.reason}")
            if not await self._await_resubmission(decision.reason):
                return await self._end(MerchantStatus.EXPIRED, "not resubmitted within the resubmission window")
        if not await self._sign_contract():
            return await self._end(MerchantStatus.EXPIRED, "contract not signed within the signing window")
        if self._terms.deposit_minor > 0 and not await self._collect_deposit():
            reason = f"security deposit not paid in {MAX_DEPOSIT_ATTEMPTS} payment attempts; apply again"
            return await self._end(MerchantStatus.EXPIRED, reason)
        return await self._end(MerchantStatus.ACTIVE, "onboarded: the merchant can take orders")

    async def _verify(self) -> str:
        """Run the three KYC checks of the current version; the mismatches' findings ('' if none)."""
        inp, v = self._inp, self._version
        await self._move(MerchantStatus.VERIFYING, f"verifying-v{v}", f"KYC checks of application v{v}", version=v)
        self._verified_version = v
        stages.enter("VERIFYING", f"KYC checks of application v{v}: licence, identity, bank account")
        reqs = {
            c: KycRequest(merchant_id=inp.merchant_id, version=v, check=c, notify_url=self._notify("kyc"))
            for c in KYC_CHECKS
        }
        results: dict[str, KycResult] = {}
        for check, req in reqs.items():
            try:
                r = await party_step(VerificationActivities.submit_check, req)
            except ActivityError as err:  # the provider refused outright: the auditor must look
                r = KycResult(check=check, request_no=req.request_no, status="MISMATCH", findings=str(err.cause or err))
            if r.status in DONE:
                results[check] = r
        waiting = PartyWait(lambda: bool(self._kyc_inbox), lambda _: inp.terms.kyc_poll_seconds)
        while len(results) < len(reqs):
            pending = [c for c in reqs if c not in results]
            stages.say(
                f"waiting for KYC results ({', '.join(pending)}) of application v{v}; {waiting.polls} polls so far"
            )
            if await waiting.next() is Woke.HEARD:
                n = self._kyc_inbox.pop(0)
                for c in pending:
                    if n.request_no == reqs[c].request_no and n.result in DONE:
                        results[c] = KycResult(check=c, request_no=n.request_no, status=n.result, findings=n.findings)
                continue
            for c in pending:
                try:
                    r = await workflow.execute_activity_method(
                        VerificationActivities.query_check,
                        reqs[c],
                        start_to_close_timeout=policies.CHANNEL_TIMEOUT,
                        retry_policy=policies.CHANNEL_QUERY,
                    )
                except ActivityError:
                    continue  # the next poll or the callback will tell
                if r.status in DONE:
                    results[c] = r
        findings = "; ".join(f"{r.check.value}: {r.findings}" for r in results.values() if r.status == "MISMATCH")
        cause = f"KYC mismatch ({findings})" if findings else "KYC checks passed"
        await self._move(MerchantStatus.IN_REVIEW, f"kyc-v{v}", cause, kyc=list(results.values()))
        return findings

    async def _review(self, stage: MerchantStatus, findings: str) -> ReviewInput:
        t = self._inp.terms
        self._reviews += 1
        n = self._reviews
        who = "a second auditor" if stage is MerchantStatus.SECOND_REVIEW else "an auditor"
        waiting = f"v{self._version} waiting for {who} since {workflow.now():%H:%M:%S} UTC"
        if findings:
            waiting += f"; KYC findings: {findings}"
        stages.enter(stage.value, waiting)
        decided: Callable[[], bool] = lambda: self._decision is not None  # noqa: E731
        if not await wait_until(decided, t.review_remind_seconds):
            stages.say(f"{waiting}; reminder sent")
            await self._note(f"review-{n}-reminded", f"reminder: {who} has not decided in {t.review_remind_seconds}s")
            if not await wait_until(decided, max(t.review_escalate_seconds - t.review_remind_seconds, 0)):
                stages.enter(
                    f"{stage.value}_ESCALATED",
                    f"{waiting}; reminder sent; escalated past the audit SLA of {t.review_escalate_seconds}s",
                )
                await self._note(f"review-{n}-escalated", f"escalated: no decision in {t.review_escalate_seconds}s")
                await workflow.wait_condition(decided)
        d = self._decision
        assert d is not None
        if d.decision is ReviewDecision.REJECT:
            to = MerchantStatus.REJECTED
        elif d.decision is ReviewDecision.REQUEST_CHANGES:
            to = MerchantStatus.CHANGES_REQUESTED
        elif stage is MerchantStatus.IN_REVIEW and self._terms.risk_level is RiskLevel.HIGH:
            to = MerchantStatus.SECOND_REVIEW
        else:
            to = MerchantStatus.CONTRACTING
        if stage is MerchantStatus.IN_REVIEW:
            self._first_reviewer = d.by
        record = ReviewRecord(stage=stage, decision=d.decision, reason=d.reason, by=d.by, version=self._version)
        await self._move(
            to, f"review-{n}-{d.decision.value}", f"{d.decision.value} by {d.by.actor}: {d.reason}", review=record
        )
        self._decision = None
        self._decided += 1
        return d

    async def _await_resubmission(self, reason: str) -> bool:
        window = self._inp.terms.resubmit_window_seconds
        until = workflow.now() + timedelta(seconds=window)
        stages.enter(
            "CHANGES_REQUESTED", f"changes requested ({reason}); waiting for a resubmission until {until:%H:%M:%S} UTC"
        )
        await wait_until(lambda: self._resubmission is not None, window)
        if self._resubmission is None:
            return False
        self._version, self._resubmission = self._resubmission, None
        return True

    # --- helpers --------------------------------------------------------------------------------
    async def _end(self, status: MerchantStatus, reason: str) -> OnboardingResult:
        await self._move(status, status.value.lower(), reason)
        stages.enter(status.value, reason)
        await workflow.wait_condition(workflow.all_handlers_finished)
        return OnboardingResult(merchant_id=self._inp.merchant_id, status=status, reason=reason)

    async def _move(self, to: MerchantStatus | None, event: str, cause: str, **fields: Any) -> None:
        # The flow's own state moves first, so validators judge by where the flow has decided to be.
        if to is not None:
            self._status = to
        await db_step(
            OnboardingActivities.transition,
            OnboardingTransition(merchant_id=self._inp.merchant_id, event=event, cause=cause, to=to, **fields),
        )
        if to is not None:
            self._recorded = to

    async def _note(self, event: str, cause: str) -> None:
        await self._move(None, event, cause)

    def _notify(self, party: str) -> str:
        return f"{self._inp.terms.notify_url}/{party}"

    def _view(self) -> MerchantView:
        assert self._recorded is not None
        return MerchantView(merchant_id=self._inp.merchant_id, status=self._recorded)
