"""Merchant onboarding through the API: KYC, reviews, resubmission, contract, deposit, and what operators see."""

from __future__ import annotations

import asyncio
import uuid

import pytest
from sqlalchemy import func, select, text

from db.api_keys import issue_key
from db.engine import unit_of_work
from db.models import AuditEvent, JournalEntry, MerchantApplication
from domain.access import Role
from tests.support.sandbox_receiver import eventually
from tests.support.shop import (
    apply_merchant,
    bearer,
    onboarding,
    onboarding_reaches,
    record_history,
    refused_with,
    review_merchant,
    stage_of,
)
from workflows.ids import merchant_onboarding_workflow_id, payment_workflow_id


@pytest.fixture
async def auditors(shop) -> tuple[str, str]:  # type: ignore[no-untyped-def]
    """Two different auditors (a person each), for the two reviews of a high-risk category."""
    async with unit_of_work(shop.sessions) as session:
        _, alice = await issue_key(session, role=Role.AUDITOR, name=f"alice-{uuid.uuid4().hex[:6]}")
        _, bob = await issue_key(session, role=Role.AUDITOR, name=f"bob-{uuid.uuid4().hex[:6]}")
    return alice, bob


@pytest.fixture(autouse=True)
async def reset_parties(shop):  # type: ignore[no-untyped-def]
    yield
    for party in ("kyc", "esign"):
        await shop.outside.delete(f"/_sandbox/faults/{party}")


async def sign(shop, merchant_id: str) -> dict:  # type: ignore[no-untyped-def,type-arg]
    m = await onboarding_reaches(shop, merchant_id, "CONTRACTING")
    assert m["contract"]["contract_id"] and m["contract"]["sign_url"]
    r = await shop.outside.post(m["contract"]["sign_url"])
    assert r.status_code == 200 and r.json()["status"] == "SIGNED", r.text
    return m  # type: ignore[no-any-return]


async def audit_actions(shop, merchant_id: str) -> list[str]:  # type: ignore[no-untyped-def]
    async with unit_of_work(shop.sessions) as session:
        rows = await session.execute(
            select(AuditEvent.action).where(AuditEvent.subject_id == merchant_id).order_by(AuditEvent.id)
        )
        return [a for (a,) in rows]


async def entries(shop, code: str, reference: str) -> int:  # type: ignore[no-untyped-def]
    async with unit_of_work(shop.sessions) as session:
        q = select(func.count()).select_from(JournalEntry).where(JournalEntry.tx_code == code)
        return int((await session.execute(q.where(JournalEntry.reference == reference))).scalar_one())


async def test_a_food_merchant_goes_straight_to_active_and_takes_orders(shop, auditors, temporal):
    alice, _ = auditors
    merchant_id, _ = await apply_merchant(shop)
    m = await onboarding_reaches(shop, merchant_id, "IN_REVIEW")
    assert sorted((c["check"], c["status"]) for c in m["kyc_checks"]) == [
        ("bank", "PASS"),
        ("identity", "PASS"),
        ("licence", "PASS"),
    ]
    r = await review_merchant(shop, merchant_id, "approve", alice)
    assert r.status_code == 200, r.text
    assert r.json()["status"] == "CONTRACTING"
    await sign(shop, merchant_id)
    m = await onboarding_reaches(shop, merchant_id, "ACTIVE")
    assert [(r["stage"], r["decision"]) for r in m["reviews"]] == [("IN_REVIEW", "approve")]
    assert "alice" in m["reviews"][0]["auditor"] and m["deposit"] is None and m["contract"] is None
    assert await audit_actions(shop, merchant_id) == ["merchant.review.approve"]
    assert await shop.balance(f"merchant:{merchant_id}:available") == 0
    await stage_of(temporal, merchant_onboarding_workflow_id(merchant_id), "ACTIVE")

    # Once active, an admin issues its key and the merchant takes orders.
    r = await shop.api.post(
        "/v1/api-keys",
        json={"role": "merchant", "merchant_id": merchant_id, "name": "noodles", "person": "noodles-owner"},
        headers=shop.as_(Role.ADMIN),
    )
    assert r.status_code == 201, r.text
    shop.merchant_keys[merchant_id] = r.json()["key"]
    order = await shop.placed(merchant_id)
    await shop.pay(order["payment"]["pay_url"])
    placed = await shop.reaches(order["order_no"], "AWAITING_MERCHANT")
    assert (await shop.accept(placed)).status_code == 200


async def test_a_home_services_merchant_pays_its_deposit_before_it_is_active(shop, auditors, temporal):
    alice, _ = auditors
    merchant_id, _ = await apply_merchant(shop, category="home_services")
    await onboarding_reaches(shop, merchant_id, "IN_REVIEW")
    assert (await review_merchant(shop, merchant_id, "approve", alice)).status_code == 200
    await sign(shop, merchant_id)
    m = await onboarding_reaches(shop, merchant_id, "AWAITING_DEPOSIT")
    deposit = m["deposit"]
    assert deposit["amount_minor"] == 50000 and deposit["payment_no"].startswith("DEP")
    details = await stage_of(temporal, merchant_onboarding_workflow_id(merchant_id), "AWAITING_DEPOSIT")
    assert deposit["payment_no"] in details and "50000" in details
    assert (await shop.pay(deposit["pay_url"])).status_code == 200
    await onboarding_reaches(shop, merchant_id, "ACTIVE")
    assert await shop.balance(f"merchant:{merchant_id}:deposit") == 50000
    assert await entries(shop, "DEPOSIT_PAID", deposit["payment_no"]) == 1
    assert await entries(shop, "PAYMENT_CAPTURED", deposit["payment_no"]) == 0
    await record_history(temporal, merchant_onboarding_workflow_id(merchant_id), "onboarding_deposit_paid_active")
    await record_history(temporal, payment_workflow_id(deposit["payment_no"]), "payment_deposit_paid")


async def test_a_rejected_application_ends_and_takes_no_further_decision(shop, auditors, temporal):
    alice, bob = auditors
    merchant_id, _ = await apply_merchant(shop)
    await onboarding_reaches(shop, merchant_id, "IN_REVIEW")
    r = await review_merchant(shop, merchant_id, "reject", alice, reason="licence is expired")
    assert r.status_code == 200 and r.json()["status"] == "REJECTED", r.text
    m = await onboarding_reaches(shop, merchant_id, "REJECTED")
    assert "licence is expired" in m["reason"]
    await stage_of(temporal, merchant_onboarding_workflow_id(merchant_id), "REJECTED")
    # The flow has ended (its result is the rejection): a later decision finds no flow to take it.
    await asyncio.wait_for(temporal.get_workflow_handle(merchant_onboarding_workflow_id(merchant_id)).result(), 30)
    again = await review_merchant(shop, merchant_id, "approve", bob)
    refused_with(again, 409, "FLOW_NOT_RUNNING")
    assert (await onboarding(shop, merchant_id))["reviews"] == m["reviews"]
    await record_history(temporal, merchant_onboarding_workflow_id(merchant_id), "onboarding_rejected")


async def test_changes_requested_then_resubmitted_goes_through_the_checks_again(shop, auditors, temporal):
    alice, bob = auditors
    merchant_id, first = await apply_merchant(shop)
    await onboarding_reaches(shop, merchant_id, "IN_REVIEW")
    r = await review_merchant(shop, merchant_id, "request_changes", alice, reason="bank account is not the company's")
    assert r.status_code == 200 and r.json()["status"] == "CHANGES_REQUESTED", r.text
    details = await stage_of(temporal, merchant_onboarding_workflow_id(merchant_id), "CHANGES_REQUESTED")
    assert "bank account is not the company's" in details
    corrected = {**first, "bank_account_no": "6222000011113333", "name": "Noodle House Ltd"}
    headers = {**shop.as_(Role.SERVICE), "Idempotency-Key": uuid.uuid4().hex}
    r = await shop.api.post(f"/v1/merchants/{merchant_id}/resubmit", json=corrected, headers=headers)
    assert r.status_code == 200, r.text
    m = await onboarding_reaches(shop, merchant_id, "IN_REVIEW")
    assert m["application_version"] == 2 and m["name"] == "Noodle House Ltd"
    assert [a["bank_account_no"] for a in m["applications"]] == [f"****{first['bank_account_no'][-4:]}", "****3333"]
    assert sorted(c["version"] for c in m["kyc_checks"]) == [1, 1, 1, 2, 2, 2]
    assert (await review_merchant(shop, merchant_id, "approve", bob)).status_code == 200
    await sign(shop, merchant_id)
    m = await onboarding_reaches(shop, merchant_id, "ACTIVE")
    assert [(r["decision"], r["application_version"]) for r in m["reviews"]] == [
        ("request_changes", 1),
        ("approve", 2),
    ]
    assert await audit_actions(shop, merchant_id) == ["merchant.review.request_changes", "merchant.review.approve"]
    await record_history(temporal, merchant_onboarding_workflow_id(merchant_id), "onboarding_resubmitted_active")


async def test_an_application_not_resubmitted_in_time_expires(shop, auditors, temporal):
    alice, _ = auditors
    merchant_id, body = await apply_merchant(shop)
    await onboarding_reaches(shop, merchant_id, "IN_REVIEW")
    assert (await review_merchant(shop, merchant_id, "request_changes", alice)).status_code == 200
    m = await onboarding_reaches(shop, merchant_id, "EXPIRED", within=20)
    assert "resubmission window" in m["reason"]
    headers = {**shop.as_(Role.SERVICE), "Idempotency-Key": uuid.uuid4().hex}
    late = await shop.api.post(f"/v1/merchants/{merchant_id}/resubmit", json=body, headers=headers)
    refused_with(late, 409, "NOT_AWAITING_CHANGES")
    await stage_of(temporal, merchant_onboarding_workflow_id(merchant_id), "EXPIRED")
    await record_history(temporal, merchant_onboarding_workflow_id(merchant_id), "onboarding_resubmission_expired")


async def test_a_kyc_mismatch_reaches_review_with_the_findings(shop, auditors, temporal):
    await shop.faults("kyc", kyc_result="mismatch")
    merchant_id, _ = await apply_merchant(shop)
    m = await onboarding_reaches(shop, merchant_id, "IN_REVIEW")
    findings = {c["check"]: c["findings"] for c in m["kyc_checks"] if c["status"] == "MISMATCH"}
    assert set(findings) == {"licence", "identity", "bank"}
    assert "identity number" in findings["identity"]
    details = await stage_of(temporal, merchant_onboarding_workflow_id(merchant_id), "IN_REVIEW")
    assert "KYC findings" in details and "identity" in details
    assert (await review_merchant(shop, merchant_id, "reject", auditors[0])).status_code == 200


async def test_kyc_checks_wait_out_a_provider_outage(shop, auditors):
    await shop.faults("kyc", down=True)
    merchant_id, _ = await apply_merchant(shop)
    await onboarding_reaches(shop, merchant_id, "VERIFYING")
    await asyncio.sleep(3)
    assert (await onboarding(shop, merchant_id))["status"] == "VERIFYING"
    await shop.outside.delete("/_sandbox/faults/kyc")
    m = await onboarding_reaches(shop, merchant_id, "IN_REVIEW", within=25)
    assert len(m["kyc_checks"]) == 3 and {c["status"] for c in m["kyc_checks"]} == {"PASS"}
    checks = (await shop.outside.get("/_sandbox/kyc/checks", params={"merchant_ref": merchant_id})).json()
    assert len(checks) == 3  # one check each, however many times the platform asked


async def test_a_high_risk_category_needs_two_different_auditors(shop, auditors):
    alice, bob = auditors
    merchant_id, _ = await apply_merchant(shop, category="beauty")
    await onboarding_reaches(shop, merchant_id, "IN_REVIEW")
    r = await review_merchant(shop, merchant_id, "approve", alice)
    assert r.status_code == 200 and r.json()["status"] == "SECOND_REVIEW", r.text
    same = await review_merchant(shop, merchant_id, "approve", alice)
    assert same.status_code == 403 and same.json()["code"] == "SAME_AUDITOR", same.text
    m = await onboarding(shop, merchant_id)
    assert m["status"] == "SECOND_REVIEW" and len(m["reviews"]) == 1
    r = await review_merchant(shop, merchant_id, "approve", bob)
    assert r.status_code == 200 and r.json()["status"] == "CONTRACTING", r.text
    m = await onboarding_reaches(shop, merchant_id, "CONTRACTING")
    assert [r["stage"] for r in m["reviews"]] == ["IN_REVIEW", "SECOND_REVIEW"]


async def test_decisions_in_the_wrong_stage_or_by_others_are_refused_and_change_nothing(shop, auditors):
    alice, _ = auditors
    merchant_id, body = await apply_merchant(shop)
    await onboarding_reaches(shop, merchant_id, "IN_REVIEW")
    for role in (Role.SERVICE, Role.OPERATOR, Role.FINANCE):
        r = await review_merchant(shop, merchant_id, "approve", shop.keys[role])
        refused_with(r, 403, "FORBIDDEN")
    bad = await shop.api.post(
        f"/v1/merchants/{merchant_id}/review", json={"decision": "maybe", "reason": "x"}, headers=bearer(alice)
    )
    refused_with(bad, 422, "INVALID_REQUEST")
    headers = {**shop.as_(Role.SERVICE), "Idempotency-Key": uuid.uuid4().hex}
    early = await shop.api.post(f"/v1/merchants/{merchant_id}/resubmit", json=body, headers=headers)
    refused_with(early, 409, "NOT_AWAITING_CHANGES")
    refused_with(await review_merchant(shop, "m-nobody", "approve", alice), 404, "MERCHANT_NOT_FOUND")
    assert (await review_merchant(shop, merchant_id, "approve", alice)).status_code == 200
    await onboarding_reaches(shop, merchant_id, "CONTRACTING")
    late = await review_merchant(shop, merchant_id, "reject", alice)
    assert late.status_code == 409 and late.json()["code"] == "NOT_IN_REVIEW", late.text
    m = await onboarding(shop, merchant_id)
    assert m["status"] == "CONTRACTING" and len(m["reviews"]) == 1 and len(m["applications"]) == 1
    assert await audit_actions(shop, merchant_id) == ["merchant.review.approve"]


async def test_reminder_and_escalation_are_visible_to_operators(shop, auditors, temporal):
    merchant_id, _ = await apply_merchant(shop)
    workflow_id = merchant_onboarding_workflow_id(merchant_id)
    details = await stage_of(temporal, workflow_id, "IN_REVIEW")
    assert "waiting for an auditor since" in details and "reminder" not in details

    async def reminded() -> str | None:
        d = await stage_of(temporal, workflow_id, "IN_REVIEW")
        return d if "reminder sent" in d else None

    await eventually(reminded, 10)
    details = await stage_of(temporal, workflow_id, "IN_REVIEW_ESCALATED", within=12)
    assert "escalated past the audit SLA of 10s" in details
    assert (await review_merchant(shop, merchant_id, "approve", auditors[0])).status_code == 200
    m = await onboarding_reaches(shop, merchant_id, "CONTRACTING")
    assert [e["event"] for e in m["timeline"]][2:6] == [
        "kyc-v1",
        "review-1-reminded",
        "review-1-escalated",
        "review-1-approve",
    ]


async def test_no_clear_identity_or_bank_number_in_the_database_responses_or_histories(shop, auditors, temporal):
    alice, _ = auditors
    merchant_id, body = await apply_merchant(shop)
    clear = [body["legal_person_id_no"], body["bank_account_no"]]
    responses = [(await onboarding_reaches(shop, merchant_id, "IN_REVIEW"))]
    await review_merchant(shop, merchant_id, "request_changes", alice, reason="blurry scan")
    second = {**body, "legal_person_id_no": "11010119900307" + "123X", "bank_account_no": "6222999988887777666"}
    clear += [second["legal_person_id_no"], second["bank_account_no"]]
    headers = {**shop.as_(Role.SERVICE), "Idempotency-Key": uuid.uuid4().hex}
    r = await shop.api.post(f"/v1/merchants/{merchant_id}/resubmit", json=second, headers=headers)
    assert r.status_code == 200, r.text
    responses.append(await onboarding_reaches(shop, merchant_id, "IN_REVIEW"))
    assert (await review_merchant(shop, merchant_id, "approve", alice)).status_code == 200
    await sign(shop, merchant_id)
    responses.append(await onboarding_reaches(shop, merchant_id, "ACTIVE"))
    apps = responses[-1]["applications"]
    assert [a["legal_person_id_no"] for a in apps] == [f"****{body['legal_person_id_no'][-4:]}", "****123X"]

    texts = [str(x) for x in responses]
    async with unit_of_work(shop.sessions) as session:
        tables = (await session.execute(text("SELECT tablename FROM pg_tables WHERE schemaname = 'public'"))).all()
        for (table,) in tables:
            rows = await session.execute(text(f'SELECT row_to_json(t)::text FROM "{table}" t'))
            texts += [row for (row,) in rows]
        stored = (
            await session.execute(select(MerchantApplication).where(MerchantApplication.merchant_id == merchant_id))
        ).scalars()
        assert all(a.legal_person_id_enc.startswith("gAAAA") for a in stored)
    texts.append(
        (await temporal.get_workflow_handle(merchant_onboarding_workflow_id(merchant_id)).fetch_history()).to_json()
    )
    leaks = [n for n in clear if any(n in t for t in texts)]
    assert not leaks, f"clear numbers found: {leaks}"


async def test_a_worker_killed_mid_onboarding_finishes_it_exactly_once(shop, auditors, temporal):
    alice, _ = auditors
    merchant_id, _ = await apply_merchant(shop, category="home_services")
    # Killed while the flow waits (an activity cut off mid-run is retried only after its timeout).
    await stage_of(temporal, merchant_onboarding_workflow_id(merchant_id), "IN_REVIEW")
    shop.services.restart_worker(kill=True)
    r = await review_merchant(shop, merchant_id, "approve", alice)
    assert r.status_code == 200, r.text
    await sign(shop, merchant_id)
    m = await onboarding_reaches(shop, merchant_id, "AWAITING_DEPOSIT", within=30)
    channel = m["deposit"]["pay_url"].split("/")[-3]  # …/{channel}/pay/{payment_no}
    await shop.faults(channel, query_down=True)  # only the callback can tell the flow the deposit is paid
    try:
        shop.services.children["worker"].kill()  # SIGKILL while the deposit is outstanding
        assert (await shop.pay(m["deposit"]["pay_url"])).status_code == 200
        await shop.callback_delivered(m["deposit"]["payment_no"])  # accepted while no worker runs
        assert not shop.services.children["worker"].alive
        shop.services.start("worker")
        m = await onboarding_reaches(shop, merchant_id, "ACTIVE", within=30)
    finally:
        await shop.reset_faults()
    payment_no = m["timeline"][-2]["cause"].split()[-1]
    assert await entries(shop, "DEPOSIT_PAID", payment_no) == 1
    assert await shop.balance(f"merchant:{merchant_id}:deposit") == 50000
    events = [e["event"] for e in m["timeline"]]
    assert len(events) == len(set(events)) and events[-1] == "active"
    assert len(m["reviews"]) == 1 and len(m["kyc_checks"]) == 3
    assert await audit_actions(shop, merchant_id) == ["merchant.review.approve"]


async def test_lost_kyc_and_esign_callbacks_are_found_by_polling(shop, auditors, temporal):
    """Every KYC result and the signature reach the flow although the providers deliver no callback."""
    await shop.faults("kyc", drop_callbacks=True)
    await shop.faults("esign", drop_callbacks=True)
    alice, _ = auditors
    merchant_id, _ = await apply_merchant(shop)
    m = await onboarding_reaches(shop, merchant_id, "IN_REVIEW", within=30)
    assert sorted(c["status"] for c in m["kyc_checks"]) == ["PASS", "PASS", "PASS"]
    r = await review_merchant(shop, merchant_id, "approve", alice)
    assert r.status_code == 200, r.text
    await sign(shop, merchant_id)
    await onboarding_reaches(shop, merchant_id, "ACTIVE", within=30)
    history = await temporal.get_workflow_handle(merchant_onboarding_workflow_id(merchant_id)).fetch_history()
    asked = [
        e.activity_task_scheduled_event_attributes.activity_type.name
        for e in history.events
        if e.HasField("activity_task_scheduled_event_attributes")
    ]
    assert asked.count("kyc.query") >= 3 and "esign.query_contract" in asked, asked
    signals = [e for e in history.events if e.HasField("workflow_execution_signaled_event_attributes")]
    assert not signals, "a callback reached the flow although every one was dropped"
    await record_history(
        temporal, merchant_onboarding_workflow_id(merchant_id), "onboarding_callbacks_lost_found_by_polling"
    )
