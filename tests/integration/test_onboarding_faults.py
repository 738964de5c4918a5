"""Merchant onboarding when time runs out or the providers misbehave: a contract window or a deposit
payment expiring, the e-sign provider down, forged and duplicated KYC and e-sign callbacks."""

from __future__ import annotations

import json
import uuid
from typing import Any

import pytest
from sqlalchemy import func, select

from db.api_keys import issue_key
from db.engine import unit_of_work
from db.models import InboundNotification, LedgerAccount
from domain.access import Role
from domain.signing import signed_headers
from tests.integration.test_callbacks import signed
from tests.integration.test_onboarding import entries, sign
from tests.support.sandbox_receiver import eventually
from tests.support.shop import Shop, apply_merchant, onboarding, onboarding_reaches, review_merchant, stage_of
from workflows.ids import merchant_onboarding_workflow_id


@pytest.fixture
async def auditor(shop) -> str:  # type: ignore[no-untyped-def]
    async with unit_of_work(shop.sessions) as session:
        _, key = await issue_key(session, role=Role.AUDITOR, name=f"auditor-{uuid.uuid4().hex[:6]}")
    return key


@pytest.fixture(autouse=True)
async def reset_parties(shop):  # type: ignore[no-untyped-def]
    yield
    for party in ("kyc", "esign"):
        await shop.outside.delete(f"/_sandbox/faults/{party}")


async def approved(shop: Shop, auditor: str, **overrides: Any) -> str:
    merchant_id, _ = await apply_merchant(shop, **overrides)
    await onboarding_reaches(shop, merchant_id, "IN_REVIEW")
    r = await review_merchant(shop, merchant_id, "approve", auditor)
    assert r.status_code == 200, r.text
    return merchant_id


async def accounts_of(shop: Shop, merchant_id: str) -> int:
    async with unit_of_work(shop.sessions) as session:
        q = select(func.count()).select_from(LedgerAccount).where(LedgerAccount.code.like(f"merchant:{merchant_id}:%"))
        return int((await session.execute(q)).scalar_one())


async def notes(shop: Shop, party: str, merchant_id: str) -> list[dict[str, Any]]:
    r = await shop.outside.get("/_sandbox/notifications", params={"party": party, "ref": merchant_id})
    assert r.status_code == 200, r.text
    body: list[dict[str, Any]] = r.json()
    return body


def events(m: dict[str, Any], name: str) -> list[dict[str, Any]]:
    return [e for e in m["timeline"] if e["event"] == name]


async def test_a_contract_not_signed_within_its_window_expires_and_a_late_signature_changes_nothing(
    shop, auditor, temporal
):
    merchant_id = await approved(shop, auditor)
    contracting = await onboarding_reaches(shop, merchant_id, "CONTRACTING")
    m = await onboarding_reaches(shop, merchant_id, "EXPIRED", within=30)  # the window is 8 s
    assert m["reason"] == "contract not signed within the signing window", m["reason"]
    assert events(m, "contract-signed") == []
    assert await accounts_of(shop, merchant_id) == 0  # no ledger accounts for a merchant never signed
    await stage_of(temporal, merchant_onboarding_workflow_id(merchant_id), "EXPIRED")
    # The merchant signs at the provider after all: the provider reports it, the platform keeps the
    # notification for operators, and the merchant stays EXPIRED.
    late = await shop.outside.post(contracting["contract"]["sign_url"])
    assert late.status_code == 200, late.text

    async def kept() -> InboundNotification | None:
        async with unit_of_work(shop.sessions) as session:
            q = select(InboundNotification).where(
                InboundNotification.party == "esign", InboundNotification.routed_at.is_not(None)
            )
            rows = (await session.execute(q)).scalars().all()
        return next((r for r in rows if r.payload.get("merchant_ref") == merchant_id), None)

    row = await eventually(kept, 20)
    assert "no running flow" in (row.route_error or "")
    m = await onboarding(shop, merchant_id)
    assert m["status"] == "EXPIRED" and events(m, "contract-signed") == []
    assert await accounts_of(shop, merchant_id) == 0


async def test_an_expired_deposit_payment_is_replaced_and_only_the_new_one_activates(shop, auditor):
    merchant_id = await approved(shop, auditor, category="home_services")
    await sign(shop, merchant_id)
    first = (await onboarding_reaches(shop, merchant_id, "AWAITING_DEPOSIT"))["deposit"]

    async def replaced() -> dict[str, Any] | None:  # the payment deadline is 8 s
        m = await onboarding(shop, merchant_id)
        d = m["deposit"]
        return d if m["status"] == "AWAITING_DEPOSIT" and d and d["payment_no"] != first["payment_no"] else None

    second = await eventually(replaced, 30)
    assert second["amount_minor"] == first["amount_minor"] == 50000
    assert (await shop.pay(first["pay_url"])).status_code == 409  # the expired one is closed at the channel
    assert (await shop.pay(second["pay_url"])).status_code == 200
    m = await onboarding_reaches(shop, merchant_id, "ACTIVE")
    assert await shop.balance(f"merchant:{merchant_id}:deposit") == 50000
    assert await entries(shop, "DEPOSIT_PAID", second["payment_no"]) == 1
    assert await shop.ledger_entries(first["payment_no"]) == 0
    assert [e["event"] for e in m["timeline"] if e["event"].startswith("deposit-")][:2] == [
        "deposit-1-opened",
        "deposit-2-opened",
    ]


async def test_esign_down_when_the_contract_is_sent_is_waited_out_with_one_contract(shop, auditor):
    await shop.faults("esign", down=True)
    merchant_id = await approved(shop, auditor)
    m = await onboarding(shop, merchant_id)
    assert m["contract"] is None
    # The provider is asked again through its outage (same request number); once back, one contract.
    await shop.outside.delete("/_sandbox/faults/esign")
    await sign(shop, merchant_id)
    m = await onboarding_reaches(shop, merchant_id, "ACTIVE")
    contracts = (await shop.outside.get("/_sandbox/esign/contracts", params={"merchant_ref": merchant_id})).json()
    assert [c["status"] for c in contracts] == ["SIGNED"]
    assert len(events(m, "contract-signed")) == 1


def kyc_result(merchant_id: str, request_no: str, result: str = "MISMATCH") -> bytes:
    return json.dumps(
        {
            "event_id": f"evt-{uuid.uuid4().hex}",
            "event_type": "kyc.completed",
            "party": "kyc",
            "request_no": request_no,
            "check_id": "chk-forged",
            "check": "identity",
            "merchant_ref": merchant_id,
            "result": result,
            "findings": "forged: identity does not match",
        }
    ).encode()


async def test_forged_and_duplicated_kyc_and_esign_callbacks_change_nothing(shop, auditor):
    await shop.faults("kyc", duplicate_callbacks=True)
    await shop.faults("esign", duplicate_callbacks=True)
    merchant_id, _ = await apply_merchant(shop)
    m = await onboarding_reaches(shop, merchant_id, "IN_REVIEW")
    assert sorted((c["check"], c["status"]) for c in m["kyc_checks"]) == [
        ("bank", "PASS"),
        ("identity", "PASS"),
        ("licence", "PASS"),
    ]
    kyc_notes = await eventually(
        lambda: _all_delivered(shop, "kyc", merchant_id, copies=2, count=3), 20
    )  # every result came twice
    request_no = kyc_notes[0]["body"]["request_no"]
    forged = kyc_result(merchant_id, request_no)
    for party, headers, status in (
        ("kyc", signed_headers("guessed-secret", "POST", "/v1/callbacks/kyc", forged), 401),
        ("kyc", signed("esign", forged, path="/v1/callbacks/kyc"), 401),
        ("esign", signed("esign", forged), 422),  # e-sign may not report KYC results
    ):
        r = await shop.api.post(f"/v1/callbacks/{party}", content=forged, headers=headers)
        assert r.status_code == status, (party, r.text)
    m = await onboarding(shop, merchant_id)
    assert m["status"] == "IN_REVIEW" and len(m["kyc_checks"]) == 3
    assert {c["status"] for c in m["kyc_checks"]} == {"PASS"}

    r = await review_merchant(shop, merchant_id, "approve", auditor)
    assert r.status_code == 200, r.text
    await sign(shop, merchant_id)
    m = await onboarding_reaches(shop, merchant_id, "ACTIVE")
    await eventually(lambda: _all_delivered(shop, "esign", merchant_id, copies=2, count=1), 20)
    assert len(events(m, "contract-signed")) == 1
    async with unit_of_work(shop.sessions) as session:
        q = (
            select(InboundNotification.party, InboundNotification.refused_reason.is_(None), func.count())
            .where(InboundNotification.payload["merchant_ref"].astext == merchant_id)
            .group_by(InboundNotification.party, InboundNotification.refused_reason.is_(None))
        )
        stored = {(party, "accepted" if ok else "refused"): n for party, ok, n in (await session.execute(q)).all()}
    # Each real event kept once however often it came; the forged one e-sign signed is kept as refused.
    assert stored == {("kyc", "accepted"): 3, ("esign", "accepted"): 1, ("esign", "refused"): 1}, stored


async def _all_delivered(shop: Shop, party: str, merchant_id: str, copies: int, count: int) -> list[dict[str, Any]]:
    found = [n for n in await notes(shop, party, merchant_id) if n["deliveries"] >= copies]
    return found if len(found) == count else []
