"""DiscrepancyWorkflow (`discrepancy-{id}`): act on one reconciliation discrepancy.

Started by the reconciliation run that first found the discrepancy. The rule (domain/recon/discrepancy.py
`decide`) picks the automatic action where there is one, and the flow carries it out through the flow
that owns the record, never by writing a status: the waiting payment flow hears the channel has the
money, a refund flow returns money the platform cannot keep, the refund or withdrawal flow hears the
party's result. It then looks at the records until they agree with the statement. A SHORT is HELD and
woken by every later run that carries it, until its hold ends. Everything else waits for finance
(`resolve`, reminders); adjust and write-off need a second finance person (`approve`).
"""

from __future__ import annotations

from datetime import timedelta

from temporalio import workflow
from temporalio.exceptions import ActivityError, FailureError, WorkflowAlreadyStartedError

with workflow.unsafe.imports_passed_through():
    from activities.discrepancies import DiscrepancyActivities
    from activities.payments import PaymentActivities
    from activities.refusals import carried
    from domain.maker_checker import Who, check_checker
    from domain.payments import CaptureRequest, ChannelNotification
    from domain.recon.discrepancy import (
        NEEDS_CHECKER,
        Approval,
        AutoAction,
        DiscrepancyFacts,
        DiscrepancyInput,
        DiscrepancyOutcome,
        DiscrepancyResult,
        FinanceAction,
        FinanceDecision,
        Plan,
        check_finance_action,
        decide,
    )
    from domain.recon.runs import DiscrepancyStatus
    from domain.refunds import RefundInput, RefundOrigin, RefundResult, RefundStatus
    from domain.refusals import Refusal
    from workflows import policies, stages
    from workflows.calls import db_step, refused, wait_until
    from workflows.ids import payment_workflow_id, refund_workflow_id, withdrawal_workflow_id
    from workflows.refund import RefundWorkflow

S = DiscrepancyStatus


@workflow.defn(name="DiscrepancyWorkflow")
class DiscrepancyWorkflow:
    def __init__(self) -> None:
        self._status = S.OPEN
        self._facts: DiscrepancyFacts | None = None
        self._decision: FinanceDecision | None = None
        self._approval: Approval | None = None
        self._recheck = False
        self._note = ""

    @workflow.signal
    def recheck(self) -> None:
        """A later run carried this SHORT (or finance asks): look at the records again."""
        self._recheck = True

    @workflow.update
    async def resolve(self, decision: FinanceDecision) -> DiscrepancyResult:
        self._decision = decision
        await workflow.wait_condition(lambda: self._status is not S.AWAITING_FINANCE)
        return self._result()

    @resolve.validator
    def _check_resolve(self, decision: FinanceDecision) -> None:
        if self._status is not S.AWAITING_FINANCE or self._decision is not None or self._facts is None:
            raise refused(Refusal.NOT_AWAITING_FINANCE, f"discrepancy {self._id} is not waiting for finance")
        with carried():
            check_finance_action(self._facts, decision.action)

    @workflow.update
    async def approve(self, approval: Approval) -> DiscrepancyResult:
        self._approval = approval
        await workflow.wait_condition(lambda: self._status is not S.AWAITING_APPROVAL)
        return self._result()

    @approve.validator
    def _check_approve(self, approval: Approval) -> None:
        d = self._decision
        if self._status is not S.AWAITING_APPROVAL or d is None or self._approval is not None:
            raise refused(Refusal.NOT_AWAITING_APPROVAL, f"discrepancy {self._id} has no resolution to approve")
        with carried():
            maker, checker = Who(d.by, d.by_key_id), Who(approval.by, approval.by_key_id)
            check_checker(maker, checker, f"whoever proposed a {d.action.value} cannot approve it")

    @workflow.run
    async def run(self, inp: DiscrepancyInput) -> DiscrepancyResult:
        self._inp = inp
        self._id = inp.discrepancy_id
        stages.identify("discrepancy")
        stages.enter("ASSESSING", f"looking at discrepancy {self._id}")
        facts = await self._look()
        stages.identify("discrepancy", order_no=facts.order_no, amount_minor=facts.statement_minor)
        plan = decide(facts)
        if plan.action is AutoAction.HOLD:
            plan = await self._hold()
        acted = plan.action  # recorded as what resolved it
        if plan.action not in (AutoAction.FINANCE, AutoAction.NOTHING):
            plan = await self._act(plan)
        if plan.action is AutoAction.FINANCE:
            await self._finance(plan.reason)
        elif self._status is not S.RESOLVED:
            await self._record(S.RESOLVED, acted.value, plan.reason)
            stages.enter("RESOLVED", plan.reason)
        await workflow.wait_condition(workflow.all_handlers_finished)
        return self._result()

    # --- automatic ------------------------------------------------------------------------------
    async def _hold(self) -> Plan:
        """Wait for a later statement to carry the SHORT (each run that does wakes this flow), at most
        the hold; then finance."""
        terms = self._inp.terms
        deadline = workflow.now() + timedelta(seconds=terms.short_hold_seconds)
        self._status = S.HELD
        until = f"{deadline:%Y-%m-%d %H:%M} UTC"
        stages.enter("HELD", f"discrepancy {self._id} is held for a later statement until {until}")
        while True:
            left = (deadline - workflow.now()).total_seconds()
            if left > 0:
                await wait_until(lambda: self._recheck, left)
            self._recheck = False
            facts = await self._look()
            if facts.status == S.RESOLVED.value:
                self._status = S.RESOLVED
                stages.enter("RESOLVED", "a later statement carries it")
                return Plan(action=AutoAction.NOTHING, reason="a later statement carries it")
            if workflow.now() >= deadline:
                return Plan(action=AutoAction.FINANCE, reason="no statement carried it within the hold")

    async def _act(self, plan: Plan) -> Plan:
        """Carry out the automatic action, then look until the records agree (NOTHING left to do)."""
        f = self._facts
        assert f is not None
        self._status = S.ACTING
        await self._record(S.ACTING, plan.action.value, plan.reason)
        stages.enter("ACTING", f"{plan.action.value}: {plan.reason}")
        try:
            if plan.action is AutoAction.CAPTURE_AND_REFUND:
                return await self._capture_and_refund(f)
            await self._tell(plan.action, f)
        except (FailureError, ActivityError) as err:
            return Plan(action=AutoAction.FINANCE, reason=f"{plan.action.value} failed: {err.cause or err}")
        wait = float(self._inp.terms.check_seconds)
        give_up = workflow.now() + timedelta(seconds=self._inp.terms.act_within_seconds)
        while workflow.now() < give_up:
            await workflow.sleep(min(wait, max((give_up - workflow.now()).total_seconds(), 0.001)))
            wait = min(wait * 2, 300)
            after = decide(await self._look())
            if after.action is AutoAction.NOTHING:
                return Plan(action=AutoAction.NOTHING, reason=f"{plan.action.value}: {after.reason}")
        return Plan(action=AutoAction.FINANCE, reason=f"{plan.action.value} did not show in the records in time")

    async def _tell(self, action: AutoAction, f: DiscrepancyFacts) -> None:
        """Tell the flow that owns the record what the statement says, on the signal it already hears."""
        event = f"recon-discrepancy-{f.discrepancy_id}"
        if action is AutoAction.CAPTURE:
            paid = ChannelNotification(
                event_id=event,
                event_type="payment.succeeded",
                party=f.source,
                out_trade_no=f.our_no,
                amount_minor=f.statement_minor or 0,
                currency=f.currency,
                status="SUCCESS",
                channel_txn_id=f.party_no,
            )
            payment = workflow.get_external_workflow_handle(payment_workflow_id(f.our_no))
            await payment.signal("notification", paid.model_dump())
        elif action is AutoAction.COMPLETE_REFUND:
            note = {"event_id": event, "event_type": "refund.succeeded", "out_refund_no": f.our_no, "status": "SUCCESS"}
            await workflow.get_external_workflow_handle(refund_workflow_id(f.our_no)).signal("notification", note)
        elif action is AutoAction.PAYOUT_RESULT:
            outcome = {"withdrawal_id": f.our_no, "status": f.statement_status, "bank_ref": f.party_no}
            outcome["reason"] = f"the bank's statement (discrepancy {f.discrepancy_id})"
            await workflow.get_external_workflow_handle(withdrawal_workflow_id(f.our_no)).signal("payout", outcome)
        elif action is AutoAction.REFUND_EXTRA:
            assert f.extra_channel is not None and f.order_no is not None
            no = f"RF{f.our_no.removeprefix('PAY')}{f.extra_channel.upper()[:2]}"  # as the payment flow names it
            try:
                await self._start_refund(f, no, f.extra_channel, f.platform_minor or 0, "duplicate payment")
            except WorkflowAlreadyStartedError:
                pass  # the payment flow is returning it already: one refund per business number

    async def _capture_and_refund(self, f: DiscrepancyFacts) -> Plan:
        """Money the channel has for a cancelled order: record it as the payment flow would have (paid after
        cancel), then return it through a refund flow."""
        assert f.order_no is not None and f.statement_minor is not None
        capture = CaptureRequest(
            payment_no=f.our_no,
            order_no=f.order_no,
            channel=f.source,
            channel_txn_id=f.party_no,
            amount_minor=f.statement_minor,
            currency=f.currency,
            after_cancel=True,
        )
        await db_step(PaymentActivities.capture, capture)
        no = f"RF{f.our_no.removeprefix('PAY')}RC"
        try:
            handle = await self._start_refund(f, no, f.source, f.statement_minor, "paid after the order was cancelled")
        except WorkflowAlreadyStartedError:
            return Plan(action=AutoAction.NOTHING, reason=f"refund {no} of the payment is under way")
        result: RefundResult = await handle
        if result.status is RefundStatus.FAILED:
            return Plan(action=AutoAction.FINANCE, reason=f"refund {no} failed: {result.failure_reason}")
        return Plan(action=AutoAction.NOTHING, reason=f"refund {no} of the payment: {result.status.value}")

    async def _start_refund(
        self, f: DiscrepancyFacts, refund_no: str, channel: str, amount: int, why: str
    ) -> workflow.ChildWorkflowHandle[RefundWorkflow, RefundResult]:
        assert f.order_no is not None
        refund = RefundInput(
            refund_no=refund_no,
            order_no=f.order_no,
            payment_no=f.our_no,
            channel=channel,
            amount_minor=amount,
            reason=f"reconciliation, discrepancy {f.discrepancy_id}: {why}",
            origin=RefundOrigin.PAYMENT,
            requested_by="reconciliation",
            terms=self._inp.terms.refund,
        )
        return await workflow.start_child_workflow(
            RefundWorkflow.run,
            refund,
            id=refund_workflow_id(refund_no),
            parent_close_policy=workflow.ParentClosePolicy.ABANDON,
        )

    # --- finance --------------------------------------------------------------------------------
    async def _finance(self, reason: str) -> None:
        terms = self._inp.terms
        # Finance may answer as soon as the record says so, which is before this activity's result
        # reaches the flow: the decision is taken from here on.
        self._status = S.AWAITING_FINANCE
        self._facts = await workflow.execute_activity_method(
            DiscrepancyActivities.to_finance,
            args=[self._id, reason],
            start_to_close_timeout=policies.DB_TIMEOUT,
            retry_policy=policies.DB,
        )
        waiting = f"discrepancy {self._id} waits for finance: {reason}"
        stages.enter("AWAITING_FINANCE_APPROVAL", waiting)
        reminders = 0
        while not await wait_until(lambda: self._decision is not None, terms.remind_seconds):
            reminders += 1
            stages.say(f"{waiting} (reminder {reminders})")
        d = self._decision
        assert d is not None
        if d.action in NEEDS_CHECKER:
            self._status = S.AWAITING_APPROVAL
            note = f"{d.action.value} proposed by {d.by}: {d.reason}"
            await self._record(S.AWAITING_APPROVAL, d.action.value, note, d.by)
            stages.enter("AWAITING_FINANCE_APPROVAL", f"{note}; waits for a second finance person")
            while not await wait_until(lambda: self._approval is not None, terms.remind_seconds):
                stages.say(f"{note}; waits for a second finance person (reminder)")
            a = self._approval
            assert a is not None
            note = f"{note}; approved by {a.by}" + (f": {a.note}" if a.note else "")
            await workflow.execute_activity_method(
                DiscrepancyActivities.clear,
                args=[self._id, d.action, note, a.by],
                start_to_close_timeout=policies.DB_TIMEOUT,
                retry_policy=policies.DB,
            )
            self._status, self._note = S.RESOLVED, note
            stages.enter("RESOLVED", note)
            return
        auto = AutoAction.CAPTURE if d.action is FinanceAction.COMPLETE_ORDER else AutoAction.CAPTURE_AND_REFUND
        self._status = S.ACTING
        plan = await self._act(Plan(action=auto, reason=f"{d.action.value} by {d.by}: {d.reason}"))
        if plan.action is AutoAction.FINANCE:
            self._decision = None  # it did not work: back to finance
            await self._finance(plan.reason)
            return
        await self._record(S.RESOLVED, d.action.value, plan.reason, d.by)
        stages.enter("RESOLVED", plan.reason)

    # --- records --------------------------------------------------------------------------------
    async def _look(self) -> DiscrepancyFacts:
        self._facts = await db_step(DiscrepancyActivities.facts, self._id)
        return self._facts

    async def _record(self, status: DiscrepancyStatus, action: str, note: str, by: str | None = None) -> None:
        self._status, self._note = status, note
        outcome = DiscrepancyOutcome(discrepancy_id=self._id, status=status.value, action=action, note=note, by=by)
        await db_step(DiscrepancyActivities.record, outcome)

    def _result(self) -> DiscrepancyResult:
        d = self._decision
        return DiscrepancyResult(
            discrepancy_id=self._id,
            status=self._status.value,
            action=d.action.value if d else None,
            note=self._note,
            proposed_by=d.by if d and self._status is S.AWAITING_APPROVAL else None,
        )
