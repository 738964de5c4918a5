"""Maker-checker compares people, not keys; key revocation; admin-only categories; audit rows commit
with the decision they record (and only then)."""

from __future__ import annotations

import uuid

from sqlalchemy import select

from db.api_keys import issue_key
from db.engine import unit_of_work
from db.models import AuditEvent
from domain.access import Role
from tests.integration.test_refunds import delivered_order
from tests.integration.test_settlement import BIG, run_cycle, seeded, statements_of
from tests.support.sandbox_receiver import eventually
from tests.support.shop import bearer, payee, refused_with, stage_of, withdraw, withdrawal_reaches
from workflows.ids import statement_workflow_id, withdrawal_workflow_id


async def people(shop, *names: str) -> dict[str, tuple[int, str]]:  # type: ignore[no-untyped-def]
    """Finance keys by label; a label `alice2` is a second key of the person `alice` (unique per test)."""
    tag = uuid.uuid4().hex[:6]
    out = {}
    async with unit_of_work(shop.sessions) as session:
        for label in names:
            out[label] = await issue_key(
                session, role=Role.FINANCE, name=f"{label}-{tag}", person=f"{label.rstrip('0123456789')}-{tag}"
            )
    return out


async def audit(shop, subject_id: str) -> list[tuple[str, int | None]]:  # type: ignore[no-untyped-def]
    async with unit_of_work(shop.sessions) as session:
        rows = (
            (
                await session.execute(
                    select(AuditEvent).where(AuditEvent.subject_id == subject_id).order_by(AuditEvent.id)
                )
            )
            .scalars()
            .all()
        )
    return [(r.action, r.actor_key_id) for r in rows]


async def test_a_revoked_key_is_refused_on_the_very_next_request(api, keys, shop):
    admin = bearer(keys[Role.ADMIN])
    person = f"carol-{uuid.uuid4().hex[:6]}@example.com"
    r = await api.post("/v1/api-keys", json={"role": "finance", "person": person, "name": "laptop"}, headers=admin)
    assert r.status_code == 201, r.text
    issued = r.json()
    assert issued["person"] == person and issued["key_id"] == issued["id"]
    assert (await api.get("/v1/ledger/trial-balance", headers=bearer(issued["key"]))).status_code == 200
    listed = (await api.get("/v1/api-keys", headers=admin)).json()
    [mine] = [k for k in listed if k["key_id"] == issued["key_id"]]
    assert mine["person"] == person and "key" not in mine and mine["revoked_at"] is None
    refused_with(await api.get("/v1/api-keys", headers=bearer(issued["key"])), 403, "FORBIDDEN")
    refused_with(await api.delete(f"/v1/api-keys/{issued['key_id']}", headers=bearer(issued["key"])), 403, "FORBIDDEN")

    gone = await api.delete(f"/v1/api-keys/{issued['key_id']}", headers=admin)
    assert gone.status_code == 200 and gone.json()["revoked_at"], gone.text
    refused = await api.get("/v1/ledger/trial-balance", headers=bearer(issued["key"]))
    assert "revoked" in refused_with(refused, 401, "UNAUTHENTICATED")["detail"]
    assert issued["key_id"] not in [k["key_id"] for k in (await api.get("/v1/api-keys", headers=admin)).json()]
    everything = (await api.get("/v1/api-keys", params={"include_revoked": "true"}, headers=admin)).json()
    assert [k["revoked_at"] is not None for k in everything if k["key_id"] == issued["key_id"]] == [True]
    # Revoking again changes nothing and records nothing; an unknown key is a 404.
    assert (await api.delete(f"/v1/api-keys/{issued['key_id']}", headers=admin)).status_code == 200
    refused_with(await api.delete("/v1/api-keys/999999999", headers=admin), 404, "API_KEY_NOT_FOUND")
    refused_with(await api.delete("/v1/api-keys/0", headers=admin), 422, "INVALID_REQUEST")
    assert [a for a, _ in await audit(shop, str(issued["key_id"]))] == ["api_key.created", "api_key.revoked"]


async def test_a_key_needs_a_valid_person(api, keys):
    admin = bearer(keys[Role.ADMIN])
    for body in (
        {"role": "finance", "name": "x"},
        {"role": "finance", "name": "x", "person": ""},
        {"role": "finance", "name": "x", "person": "two words"},
        {"role": "finance", "name": "x", "person": "p" * 101},
    ):
        r = await api.post("/v1/api-keys", json=body, headers=admin)
        assert "person" in refused_with(r, 422, "INVALID_REQUEST")["detail"], body


async def test_merchant_categories_are_changed_by_admin_only(api, keys):
    code = f"cat_{uuid.uuid4().hex[:8]}"
    body = {"code": code, "name": "Pet grooming", "risk_level": "low", "deposit_minor": 0}
    for role in (Role.OPERATOR, Role.FINANCE, Role.SERVICE, Role.AUDITOR):
        r = await api.put(f"/v1/merchant-categories/{code}", json=body, headers=bearer(keys[role]))
        refused_with(r, 403, "FORBIDDEN")
    listed = await api.get("/v1/merchant-categories", headers=bearer(keys[Role.OPERATOR]))
    assert code not in [c["code"] for c in listed.json()]
    ok = await api.put(f"/v1/merchant-categories/{code}", json=body, headers=bearer(keys[Role.ADMIN]))
    assert ok.status_code == 200, ok.text


async def test_two_keys_of_one_person_cannot_request_and_approve_a_manual_refund(shop):
    staff = await people(shop, "alice", "alice2", "bob", "bob2", "carol")
    order = await delivered_order(shop)
    await shop.faults("wechat", refund_failure="permanent")
    r = await shop.request_refund(order["order_no"], 900, as_key=staff["alice"][1], reason="damaged")
    assert r.status_code == 202, r.text
    refund_no = r.json()["refund_no"]

    async def pending() -> dict | None:  # type: ignore[type-arg]
        refund = await shop.refund(refund_no)
        return refund if refund["status"] == "MANUAL_PENDING" else None

    await eventually(pending, 20)
    url = f"/v1/refunds/{refund_no}/manual-transfer/approve"
    own = await shop.api.post(url, json={"note": "my other key"}, headers=bearer(staff["alice2"][1]))
    assert own.status_code == 403 and own.json()["code"] == "SAME_PERSON", own.text
    assert (await shop.refund(refund_no))["status"] == "MANUAL_PENDING"
    assert await audit(shop, refund_no) == []  # refused: no decision, no audit row
    ok = await shop.api.post(url, json={"note": "paid"}, headers=bearer(staff["bob"][1]))
    assert ok.status_code == 200 and ok.json()["status"] == "MANUAL_PAID", ok.text
    assert await audit(shop, refund_no) == [("refund.manual_transfer_approved", staff["bob"][0])]


async def test_two_keys_of_one_person_cannot_adjust_and_approve_a_statement(shop, temporal):
    staff = await people(shop, "alice", "alice2", "bob", "bob2", "carol")
    merchant_id, _ = await seeded(shop, 2, BIG)
    await run_cycle(shop)

    async def pending() -> dict | None:  # type: ignore[type-arg]
        sts = await statements_of(shop, merchant_id)
        return sts[0] if sts and sts[0]["status"] == "PENDING_APPROVAL" else None

    st = await eventually(pending, 30)
    sid = str(st["id"])
    await stage_of(temporal, statement_workflow_id(sid), "AWAITING_FINANCE_APPROVAL")
    adj = await shop.api.post(
        f"/v1/settlements/{sid}/adjustments",
        json={"amount_minor": 50, "reason": "goodwill"},
        headers=bearer(staff["alice"][1]),
    )
    assert adj.status_code == 200, adj.text
    assert await audit(shop, sid) == [("settlement.adjusted", staff["alice"][0])]
    own = await shop.api.post(f"/v1/settlements/{sid}/approve", json={}, headers=bearer(staff["alice2"][1]))
    assert own.status_code == 403 and own.json()["code"] == "SAME_PERSON", own.text
    assert [a for a, _ in await audit(shop, sid)] == ["settlement.adjusted"]
    ok = await shop.api.post(f"/v1/settlements/{sid}/approve", json={"note": "ok"}, headers=bearer(staff["bob"][1]))
    assert ok.status_code == 200 and ok.json()["status"] == "APPROVED", ok.text
    assert await audit(shop, sid) == [
        ("settlement.adjusted", staff["alice"][0]),
        ("settlement.approved", staff["bob"][0]),
    ]


async def test_the_approver_of_a_withdrawal_cannot_resolve_its_unknown_payout(shop, temporal):
    staff = await people(shop, "alice", "alice2", "bob", "bob2", "carol")
    m = await payee(shop, 7_000_000)
    r = await withdraw(shop, m, 6_000_000)  # over the approval threshold
    assert r.status_code == 202 and r.json()["status"] == "PENDING_APPROVAL", r.text
    wid = r.json()["withdrawal_id"]
    await stage_of(temporal, withdrawal_workflow_id(wid), "AWAITING_FINANCE_APPROVAL")
    # The bank's own result never arrives (callbacks dropped, its slow poll far off): only finance
    # can resolve the payout, which is what this test is about.
    await shop.outside.put("/_sandbox/faults/bank", json={"payout_failure": "unknown", "drop_callbacks": True})
    try:
        ok = await shop.api.post(f"/v1/withdrawals/{wid}/approve", json={}, headers=bearer(staff["alice"][1]))
        assert ok.status_code == 200, ok.text
        await withdrawal_reaches(shop, wid, "UNKNOWN", within=40)
        assert await audit(shop, wid) == [("withdrawal.approved", staff["alice"][0])]
        settled = await shop.outside.post(f"/_sandbox/bank/payouts/{wid}/settle", json={"status": "PAID"})
        assert settled.status_code == 200, settled.text
        body = {"outcome": "PAID", "reason": "bank statement", "bank_ref": settled.json()["bank_ref"]}
        own = await shop.api.post(f"/v1/withdrawals/{wid}/resolve", json=body, headers=bearer(staff["alice2"][1]))
        assert own.status_code == 403 and own.json()["code"] == "SAME_PERSON", own.text
        assert (await withdrawal_reaches(shop, wid, "UNKNOWN"))["resolved_by"] is None
        proposed = await shop.api.post(f"/v1/withdrawals/{wid}/resolve", json=body, headers=bearer(staff["bob"][1]))
        assert proposed.status_code == 200 and proposed.json()["status"] == "UNKNOWN", proposed.text
        again = await shop.api.post(f"/v1/withdrawals/{wid}/resolve", json=body, headers=bearer(staff["bob2"][1]))
        assert again.status_code == 403 and again.json()["code"] == "SAME_PERSON", again.text
        done = await shop.api.post(f"/v1/withdrawals/{wid}/resolve", json=body, headers=bearer(staff["carol"][1]))
        assert done.status_code == 200 and done.json()["status"] == "PAID", done.text
    finally:
        await shop.outside.delete("/_sandbox/faults/bank")
    assert await audit(shop, wid) == [
        ("withdrawal.approved", staff["alice"][0]),
        ("withdrawal.resolved", staff["carol"][0]),
    ]
