"""MerchantOnboardingWorkflow on its own: a refused application, one or two reviewers (high risk needs a
second one who is not the first) and their validators, rejection, changes requested with the
resubmission and its window, KYC and e-sign results by callback or by polling, the review reminder and
escalation, the signing window, and the security deposit paid or left to expire.

The deposit's payment is a stand-in child registered as PaymentWorkflow: it tells the onboarding flow
"ready" and then "succeeded" or "expired" at once, as the real one would after the customer's move."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

import pytest
from temporalio import activity, workflow
from temporalio.client import Client, WorkflowHandle

from activities.refusals import refuse
from domain.merchants import (
    Contract,
    ContractRequest,
    KycCheck,
    KycRequest,
    KycResult,
    MerchantStatus,
    OnboardingInput,
    OnboardingResult,
    OnboardingTerms,
    OnboardingTransition,
    Resubmission,
    ReviewDecision,
    Reviewer,
    ReviewInput,
    RiskLevel,
    Terms,
)
from domain.payments import PaymentEvent, PaymentEventKind, PaymentInput, PaymentResult, PaymentStatus
from domain.refunds import RefundTerms
from domain.refusals import Refusal
from tests.workflows.conftest import Calls, Flow, answered, at_stage, eventually, refusal_of
from workflows import onboarding, onboarding_steps
from workflows.onboarding import MerchantOnboardingWorkflow

S = MerchantStatus
# Deposit payments (by payment number) the stand-in payment reports paid; every other one expires.
PAID_DEPOSITS: set[str] = set()


@workflow.defn(name="PaymentWorkflow", sandboxed=False)
class DepositPayment:
    @workflow.run
    async def run(self, inp: PaymentInput) -> PaymentResult:
        parent = workflow.get_external_workflow_handle(inp.parent_workflow_id)
        expires = workflow.now() + timedelta(seconds=inp.timeout_seconds)
        ready = PaymentEvent(
            kind=PaymentEventKind.READY, payment_no=inp.payment_no, pay_url="https://pay", expires_at=expires
        )
        await parent.signal(MerchantOnboardingWorkflow.payment_event, ready)
        paid = inp.payment_no in PAID_DEPOSITS
        kind = PaymentEventKind.SUCCEEDED if paid else PaymentEventKind.EXPIRED
        await parent.signal(
            MerchantOnboardingWorkflow.payment_event, PaymentEvent(kind=kind, payment_no=inp.payment_no)
        )
        return PaymentResult(
            payment_no=inp.payment_no, status=PaymentStatus.SUCCEEDED if paid else PaymentStatus.CLOSED, channel=None
        )


@dataclass
class Parties(Calls):
    """The merchant registry, the KYC provider and the e-sign provider, as the doubles tell it."""

    risk: RiskLevel = RiskLevel.LOW
    deposit_minor: int = 0
    submit_refusal: Refusal | None = None
    kyc_at_submit: dict[KycCheck, str] = field(default_factory=dict)  # default PASS
    kyc_by_poll: dict[KycCheck, str] = field(default_factory=dict)  # default PROCESSING
    contract_at_provider: str = "CREATED"  # what a query of the contract finds
    kyc_refused: set[KycCheck] = field(default_factory=set)  # checks the provider refuses outright

    def doubles(self) -> list[Any]:
        @activity.defn(name="onboarding.submit")
        async def submit(merchant_id: str) -> Terms:
            self.add("onboarding.submit", merchant_id)
            if self.submit_refusal is not None:
                raise refuse(self.submit_refusal, f"refused by the test: {self.submit_refusal}")
            return Terms(category="home", risk_level=self.risk, deposit_minor=self.deposit_minor, currency="CNY")

        @activity.defn(name="onboarding.transition")
        async def transition(t: OnboardingTransition) -> None:
            self.add("onboarding.transition", t)

        @activity.defn(name="kyc.submit")
        async def kyc_submit(req: KycRequest) -> KycResult:
            self.add("kyc.submit", req)
            if req.check in self.kyc_refused:
                raise refuse(Refusal.PARTY_REJECTED, "no such licence number")
            return kyc(req, self.kyc_at_submit.get(req.check, "PASS"))

        @activity.defn(name="kyc.query")
        async def kyc_query(req: KycRequest) -> KycResult:
            self.add("kyc.query", req)
            return kyc(req, self.kyc_by_poll.get(req.check, "PROCESSING"))

        @activity.defn(name="esign.create_contract")
        async def create_contract(req: ContractRequest) -> Contract:
            self.add("esign.create_contract", req)
            return Contract(contract_id="CT1", request_no=req.request_no, sign_url="https://sign", status="CREATED")

        @activity.defn(name="esign.query_contract")
        async def query_contract(req: ContractRequest) -> Contract:
            self.add("esign.query_contract", req)
            return Contract(
                contract_id="CT1", request_no=req.request_no, sign_url="https://sign", status=self.contract_at_provider
            )

        return [submit, transition, kyc_submit, kyc_query, create_contract, query_contract]

    def moves(self) -> list[tuple[str, MerchantStatus | None]]:
        return [(t.event, t.to) for t in self.of("onboarding.transition")]

    def events(self) -> list[str]:
        return [event for event, _ in self.moves()]


def kyc(req: KycRequest, status: str) -> KycResult:
    findings = f"{req.check.value} does not match" if status == "MISMATCH" else None
    return KycResult(check=req.check, request_no=req.request_no, status=status, findings=findings)


def application(merchant_id: str, *, poll: int = 60, window: int = 60, review: int = 60) -> OnboardingInput:
    return OnboardingInput(
        merchant_id=merchant_id,
        terms=OnboardingTerms(
            review_remind_seconds=review,
            review_escalate_seconds=review * 2,
            resubmit_window_seconds=window,
            contract_sign_window_seconds=window,
            kyc_poll_seconds=poll,
            notify_url="http://callbacks.invalid/v1/callbacks",
            payment_timeout_seconds=60,
            payment_poll_initial_seconds=1,
            payment_poll_max_seconds=1,
            channel_weights={"wechat": 1},
            refund=RefundTerms(
                poll_initial_seconds=1,
                poll_max_seconds=1,
                approval_remind_seconds=1,
                notify_url="http://callbacks.invalid",
                manual_bank="b",
            ),
        ),
    )


async def start(flow: Flow, inp: OnboardingInput) -> WorkflowHandle[Any, OnboardingResult]:
    """Submit as the API does (update-with-start `submitted`): the caller hears whether it was recorded."""
    workflow_id = f"onboarding-{inp.merchant_id}"
    await flow.start_and_ask(MerchantOnboardingWorkflow.run, inp, workflow_id, MerchantOnboardingWorkflow.submitted)
    return flow.client.get_workflow_handle_for(MerchantOnboardingWorkflow.run, workflow_id)


def auditor(name: str, key_id: int, role: str = "auditor") -> Reviewer:
    return Reviewer(actor=f"{role}:{name}", name=name, key_id=key_id, role=role)


def review(handle: WorkflowHandle[Any, Any], decision: ReviewDecision, by: Reviewer, reason: str = "looked") -> Any:
    d = ReviewInput(decision=decision, reason=reason, by=by)
    return answered(handle.execute_update(MerchantOnboardingWorkflow.review, d))


def resubmit(handle: WorkflowHandle[Any, Any], version: int) -> Any:
    return answered(handle.execute_update(MerchantOnboardingWorkflow.resubmit, Resubmission(version=version)))


async def notify(handle: WorkflowHandle[Any, Any], event_type: str, request_no: str, **more: str) -> None:
    """A KYC or e-sign callback, as the API signals it once it has checked the signature."""
    payload = {"event_id": f"e-{request_no}", "event_type": event_type, "merchant_ref": "ref", "request_no": request_no}
    await handle.signal(MerchantOnboardingWorkflow.notification, {**payload, **more})


ALICE, BOB = auditor("alice", 1), auditor("bob", 2)


async def test_a_refused_application_reaches_the_caller_and_nothing_is_checked(temporal: Client) -> None:
    parties = Parties(submit_refusal=Refusal.UNKNOWN_CATEGORY)
    flow = Flow(temporal, MerchantOnboardingWorkflow, parties.doubles())
    inp = application(flow.workflow_id("m"))
    async with flow.worker:
        assert await refusal_of(start(flow, inp)) == Refusal.UNKNOWN_CATEGORY
        result = await temporal.get_workflow_handle_for(
            MerchantOnboardingWorkflow.run, f"onboarding-{inp.merchant_id}"
        ).result()
    assert result.status is S.REJECTED and "refused by the test" in (result.reason or "")
    assert parties.names() == ["onboarding.submit"]


async def test_a_low_risk_merchant_approved_once_and_signed_by_callback_becomes_active(temporal: Client) -> None:
    parties = Parties()
    flow = Flow(temporal, MerchantOnboardingWorkflow, parties.doubles())
    inp = application(flow.workflow_id("m"))
    async with flow.worker:
        handle = await start(flow, inp)
        await eventually(lambda: at_stage(handle, "IN_REVIEW"))
        clerk = auditor("carl", 3, role="operator")
        assert await refusal_of(review(handle, ReviewDecision.APPROVE, clerk)) == Refusal.NOT_AN_AUDITOR
        assert await refusal_of(resubmit(handle, 2)) == Refusal.NOT_AWAITING_CHANGES
        approved = await review(handle, ReviewDecision.APPROVE, ALICE)
        assert approved.status is S.CONTRACTING
        assert await refusal_of(review(handle, ReviewDecision.APPROVE, BOB)) == Refusal.NOT_IN_REVIEW
        await eventually(lambda: parties.asked("esign.create_contract"))
        await notify(handle, "contract.signed", f"CT-{inp.merchant_id}-2")  # another round's: not this contract
        await notify(handle, "contract.signed", f"CT-{inp.merchant_id}-1")
        result = await answered(handle.result())
    assert result.status is S.ACTIVE
    assert "esign.query_contract" not in parties.names() and "kyc.query" not in parties.names()
    assert parties.moves() == [
        ("verifying-v1", S.VERIFYING),
        ("kyc-v1", S.IN_REVIEW),
        ("review-1-approve", S.CONTRACTING),
        ("contract-created", None),
        ("contract-signed", None),
        ("active", S.ACTIVE),
    ]
    assert parties.of("onboarding.transition")[-2].open_accounts


async def test_a_high_risk_merchant_needs_a_second_auditor_and_pays_its_deposit(temporal: Client) -> None:
    parties = Parties(risk=RiskLevel.HIGH, deposit_minor=5_000, contract_at_provider="SIGNED")
    flow = Flow(temporal, MerchantOnboardingWorkflow, parties.doubles(), others=[DepositPayment])
    inp = application(flow.workflow_id("m"), poll=1)
    PAID_DEPOSITS.add(f"DEP{inp.merchant_id.removeprefix('m-').upper()}2")  # the first attempt expires
    async with flow.worker:
        handle = await start(flow, inp)
        await eventually(lambda: at_stage(handle, "IN_REVIEW"))
        assert (await review(handle, ReviewDecision.APPROVE, ALICE)).status is S.SECOND_REVIEW
        alice_again = auditor("alice", 9)  # her other key
        assert await refusal_of(review(handle, ReviewDecision.APPROVE, alice_again)) == Refusal.SAME_AUDITOR
        assert (await review(handle, ReviewDecision.APPROVE, BOB)).status is S.CONTRACTING
        result = await answered(handle.result())
    assert result.status is S.ACTIVE
    reviews = [(t.review.stage, t.review.by.name) for t in parties.of("onboarding.transition") if t.review]
    assert reviews == [(S.IN_REVIEW, "alice"), (S.SECOND_REVIEW, "bob")]
    assert parties.events()[-4:] == ["contract-signed", "deposit-1-opened", "deposit-2-opened", "active"]
    # Signed as the e-sign provider answered a poll, no callback needed.
    assert parties.of("esign.query_contract")


async def test_a_check_the_provider_refuses_is_a_mismatch_for_the_auditor_and_a_rejection_signs_nothing(
    temporal: Client,
) -> None:
    parties = Parties(kyc_refused={KycCheck.LICENCE})
    flow = Flow(temporal, MerchantOnboardingWorkflow, parties.doubles())
    inp = application(flow.workflow_id("m"))
    async with flow.worker:
        handle = await start(flow, inp)
        await eventually(lambda: at_stage(handle, "IN_REVIEW"))
        assert (await review(handle, ReviewDecision.REJECT, ALICE, "fake licence")).status is S.REJECTED
        result = await answered(handle.result())
    assert result.status is S.REJECTED and result.reason == "rejected: fake licence"
    kyc_move = next(t for t in parties.of("onboarding.transition") if t.event == "kyc-v1")
    assert kyc_move.cause.startswith("KYC mismatch (licence: ") and "no such licence number" in kyc_move.cause
    assert "kyc.query" not in parties.names()  # a refusal is an answer: nothing to poll for
    assert "esign.create_contract" not in parties.names()


async def test_changes_requested_then_resubmitted_are_checked_again_before_the_next_review(temporal: Client) -> None:
    parties = Parties(contract_at_provider="SIGNED")
    flow = Flow(temporal, MerchantOnboardingWorkflow, parties.doubles())
    inp = application(flow.workflow_id("m"), poll=1)
    async with flow.worker:
        handle = await start(flow, inp)
        await eventually(lambda: at_stage(handle, "IN_REVIEW"))
        changes = await review(handle, ReviewDecision.REQUEST_CHANGES, ALICE, "blurry licence")
        assert changes.status is S.CHANGES_REQUESTED
        assert await refusal_of(resubmit(handle, 3)) == Refusal.STALE_VERSION
        await resubmit(handle, 2)
        await eventually(lambda: at_stage(handle, "IN_REVIEW"))
        await review(handle, ReviewDecision.APPROVE, BOB)
        result = await answered(handle.result())
    assert result.status is S.ACTIVE
    assert sorted((r.version, r.check.value) for r in parties.of("kyc.submit")) == [
        (1, "bank"),
        (1, "identity"),
        (1, "licence"),
        (2, "bank"),
        (2, "identity"),
        (2, "licence"),
    ]
    assert parties.events()[:6] == [
        "verifying-v1",
        "kyc-v1",
        "review-1-request_changes",
        "verifying-v2",
        "kyc-v2",
        "review-2-approve",
    ]


async def test_changes_not_resubmitted_within_the_window_expire_the_application(temporal: Client) -> None:
    parties = Parties()
    flow = Flow(temporal, MerchantOnboardingWorkflow, parties.doubles())
    inp = application(flow.workflow_id("m"), window=1)
    async with flow.worker:
        handle = await start(flow, inp)
        await eventually(lambda: at_stage(handle, "IN_REVIEW"))
        await review(handle, ReviewDecision.REQUEST_CHANGES, ALICE, "blurry licence")
        result = await answered(handle.result())
    assert result.status is S.EXPIRED and "resubmission window" in (result.reason or "")
    assert parties.moves()[-1] == ("expired", S.EXPIRED)
    assert len(parties.of("kyc.submit")) == 3  # version 1 only


async def test_kyc_results_by_callback_and_by_poll_then_a_slow_review_is_reminded_and_escalated(
    temporal: Client,
) -> None:
    pending = dict.fromkeys(KycCheck, "PROCESSING")
    parties = Parties(kyc_at_submit=pending, kyc_by_poll={KycCheck.BANK: "PASS"})
    flow = Flow(temporal, MerchantOnboardingWorkflow, parties.doubles())
    inp = application(flow.workflow_id("m"), poll=2, review=1)
    request_no = f"KYC-{inp.merchant_id}-v1-"
    async with flow.worker:
        handle = await start(flow, inp)
        await eventually(lambda: parties.asked("kyc.submit", 3))
        await notify(handle, "kyc.completed", f"{request_no}licence", result="PASS")
        await notify(handle, "kyc.completed", f"{request_no}identity", result="MISMATCH", findings="name differs")
        await eventually(lambda: at_stage(handle, "IN_REVIEW_ESCALATED"), within=15)
        await review(handle, ReviewDecision.REJECT, ALICE)
        result = await answered(handle.result())
    assert result.status is S.REJECTED
    # Only the check no callback answered was polled for.
    assert {r.check for r in parties.of("kyc.query")} == {KycCheck.BANK}
    kyc_move = next(t for t in parties.of("onboarding.transition") if t.event == "kyc-v1")
    assert kyc_move.cause == "KYC mismatch (identity: name differs)"
    assert {r.check: r.status for r in kyc_move.kyc or []} == {
        KycCheck.LICENCE: "PASS",
        KycCheck.IDENTITY: "MISMATCH",
        KycCheck.BANK: "PASS",
    }
    assert parties.events()[2:4] == ["review-1-reminded", "review-1-escalated"]


async def test_a_contract_not_signed_within_its_window_expires_the_application(temporal: Client) -> None:
    parties = Parties()
    flow = Flow(temporal, MerchantOnboardingWorkflow, parties.doubles())
    inp = application(flow.workflow_id("m"), poll=1, window=1)
    async with flow.worker:
        handle = await start(flow, inp)
        await eventually(lambda: at_stage(handle, "IN_REVIEW"))
        await review(handle, ReviewDecision.APPROVE, ALICE)
        result = await answered(handle.result())
    assert result.status is S.EXPIRED and "signing window" in (result.reason or "")
    assert "contract-signed" not in parties.events()
    assert len(parties.of("esign.query_contract")) >= 2  # polled, and asked once more at the deadline


async def test_a_deposit_never_paid_expires_the_application_after_the_last_attempt(
    temporal: Client, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Three attempts stand for the cap (outside the sandbox the flow reads the patched constant).
    monkeypatch.setattr(onboarding_steps, "MAX_DEPOSIT_ATTEMPTS", 3)
    monkeypatch.setattr(onboarding, "MAX_DEPOSIT_ATTEMPTS", 3)
    parties = Parties(deposit_minor=5_000, contract_at_provider="SIGNED")
    flow = Flow(temporal, MerchantOnboardingWorkflow, parties.doubles(), others=[DepositPayment], sandboxed=False)
    inp = application(flow.workflow_id("m"), poll=1)
    async with flow.worker:
        handle = await start(flow, inp)
        await eventually(lambda: at_stage(handle, "IN_REVIEW"))
        await review(handle, ReviewDecision.APPROVE, ALICE)
        result = await answered(handle.result())
    assert result.status is S.EXPIRED and "security deposit not paid in 3 payment attempts" in (result.reason or "")
    opened = [e for e in parties.events() if e.startswith("deposit-")]
    assert opened == ["deposit-1-opened", "deposit-2-opened", "deposit-3-opened"]
