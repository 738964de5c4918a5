"""MerchantOnboardingWorkflow on its own: a refused application, one or two reviewers (high risk needs a
second one who is not the first) and their validators, rejection, changes requested with the
resubmission and its window, KYC and e-sign results by callback or by polling, the review reminder and
escalation, the signing window, and the security deposit paid or left to expire (the parties and the
deposit's payment are the doubles of tests/workflows/onboarding_parties.py)."""

from __future__ import annotations

import pytest
from temporalio.client import Client

from domain.merchants import KycCheck, ReviewDecision, RiskLevel
from domain.refusals import Refusal
from tests.workflows.conftest import Flow, answered, at_stage, eventually, refusal_of
from tests.workflows.onboarding_parties import (
    ALICE,
    BOB,
    PAID_DEPOSITS,
    DepositPayment,
    Parties,
    S,
    application,
    auditor,
    deposit_no,
    notify,
    resubmit,
    review,
    start,
)
from workflows import onboarding, onboarding_steps
from workflows.onboarding import MerchantOnboardingWorkflow


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
        [asked] = parties.of("esign.create_contract")  # the request number the provider was given
        other_round = asked.model_copy(update={"round": asked.round + 1})
        await notify(handle, "contract.signed", other_round.request_no)  # not this contract: ignored
        await notify(handle, "contract.signed", asked.request_no)
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
    PAID_DEPOSITS.add(deposit_no(inp.merchant_id, 2))  # the first attempt expires
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
    async with flow.worker:
        handle = await start(flow, inp)
        await eventually(lambda: parties.asked("kyc.submit", 3))
        request_no = {r.check: r.request_no for r in parties.of("kyc.submit")}  # as the provider was given them
        await notify(handle, "kyc.completed", request_no[KycCheck.LICENCE], result="PASS")
        await notify(handle, "kyc.completed", request_no[KycCheck.IDENTITY], result="MISMATCH", findings="name differs")
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
