"""The parties of merchant onboarding as test doubles (the registry, KYC and e-sign providers) and a
stand-in for the deposit's payment, registered as PaymentWorkflow: it tells the onboarding flow "ready"
and then "succeeded" or "expired" at once, as the real one would after the customer's move."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

from temporalio import activity, workflow
from temporalio.client import WorkflowHandle

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
from tests.workflows.conftest import Calls, Flow, answered
from workflows.onboarding import MerchantOnboardingWorkflow

S = MerchantStatus
# Deposit payments (by payment number) the stand-in payment reports paid; every other one expires.
PAID_DEPOSITS: set[str] = set()


def deposit_no(merchant_id: str, attempt: int) -> str:
    """The payment number of a deposit attempt, as the onboarding flow numbers it."""
    return f"DEP{merchant_id.removeprefix('m-').upper()}{attempt}"


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
