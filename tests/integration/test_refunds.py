"""Refunds: after-sale requests, limits under concurrency, channel failures, manual transfers, crashes."""

from __future__ import annotations

import asyncio
import json
import uuid

from sqlalchemy import func, select

from db.api_keys import issue_key
from db.engine import unit_of_work
from db.models import AuditEvent, Refund
from domain.access import Role
from domain.ledger import bank_payout
from domain.settings import DEV_PARTY_SECRETS
from domain.signing import signed_headers
from tests.support.sandbox_receiver import eventually
from tests.support.shop import bearer, stage_of


async def delivered_order(shop, channel: str = "wechat") -> dict:  # type: ignore[no-untyped-def,type-arg]
    merchant_id = await shop.merchant()
    placed = await shop.placed(merchant_id, channel=channel)
    await shop.pay(placed["payment"]["pay_url"])
    order = await shop.reaches(placed["order_no"], "AWAITING_MERCHANT")
    assert (await shop.accept(order)).status_code == 200
    provider = await shop.offered_provider(order["order_no"])
    for event in ("provider_accepted", "delivered"):
        assert (await shop.fulfil(order["order_no"], event, provider)).status_code == 200
    return await shop.order(order["order_no"])


async def refund_count(shop) -> int:  # type: ignore[no-untyped-def]
    async with unit_of_work(shop.sessions) as session:
        return int((await session.execute(select(func.count()).select_from(Refund))).scalar_one())


async def test_several_partial_after_sale_refunds_up_to_what_was_paid(shop):
    order = await delivered_order(shop)
    paid = order["paid_minor"]
    first = await shop.request_refund(order["order_no"], 1000)
    assert first.status_code == 202, first.text
    assert first.json()["status"] == "PROCESSING" and first.json()["refund_no"].startswith("RF")
    second = await shop.request_refund(order["order_no"], paid - 1000 - 1)
    assert second.status_code == 202, second.text
    too_much = await shop.request_refund(order["order_no"], 2)
    assert too_much.status_code == 422 and "exceeds what is refundable" in too_much.json()["detail"]
    order = await shop.refunded(order["order_no"], paid - 1)
    assert sorted(
        r["amount_minor"] for r in await shop.channel_refunds("wechat", order["payments"][0]["payment_no"])
    ) == sorted([1000, paid - 1001])
    last = await shop.request_refund(order["order_no"], 1)
    assert last.status_code == 202
    await shop.refunded(order["order_no"], paid)
    refund = await shop.refund(first.json()["refund_no"])
    assert refund["status"] == "SUCCEEDED" and [a["status"] for a in refund["attempts"]] == ["REQUESTED", "SUCCEEDED"]


async def test_ten_concurrent_requests_never_refund_more_than_was_paid(shop):
    order = await delivered_order(shop, channel="alipay")
    paid = order["paid_minor"]  # 9000: 10 requests of 2000 ask for 20000
    answers = await asyncio.gather(*(shop.request_refund(order["order_no"], 2000) for _ in range(10)))
    accepted = [r for r in answers if r.status_code == 202]
    refused = [r for r in answers if r.status_code != 202]
    assert len(accepted) == paid // 2000
    assert all(r.status_code == 422 and "exceeds" in r.json()["detail"] for r in refused)
    await shop.refunded(order["order_no"], 2000 * len(accepted))
    channel_total = sum(
        r["amount_minor"] for r in await shop.channel_refunds("alipay", order["payments"][0]["payment_no"])
    )
    assert channel_total == 2000 * len(accepted)


async def test_the_same_idempotency_key_creates_one_refund(shop):
    order = await delivered_order(shop)
    key = uuid.uuid4().hex
    before = await refund_count(shop)
    a = await shop.request_refund(order["order_no"], 500, key=key)
    b = await shop.request_refund(order["order_no"], 500, key=key)
    assert a.status_code == b.status_code == 202 and a.json() == b.json()
    assert await refund_count(shop) == before + 1
    await shop.refunded(order["order_no"], 500)


async def test_refunds_that_cannot_be_made_are_4xx_and_change_nothing(shop):
    merchant_id = await shop.merchant()
    unpaid = await shop.placed(merchant_id)
    cancel = await shop.api.post(
        f"/v1/orders/{unpaid['order_no']}/cancel", json={"reason": "no"}, headers=shop.as_(Role.SERVICE)
    )
    assert cancel.status_code == 200
    delivered = await delivered_order(shop)
    paid_only = await shop.placed(merchant_id)
    await shop.pay(paid_only["payment"]["pay_url"])
    await shop.reaches(paid_only["order_no"], "AWAITING_MERCHANT")
    before = await refund_count(shop)
    cases = [
        (unpaid["order_no"], 100, 409, "no captured payment"),
        (delivered["order_no"], delivered["paid_minor"] + 1, 422, "exceeds"),
        (paid_only["order_no"], 100, 409, "for delivered or completed orders"),
        ("ORDnothing", 100, 404, "does not exist"),
    ]
    for order_no, amount, status, says in cases:
        r = await shop.request_refund(order_no, amount)
        assert r.status_code == status, r.text
        assert says in r.json()["detail"]
    for body in ({"amount_minor": 0, "reason": "x"}, {"amount_minor": -5, "reason": "x"}, {"amount_minor": 5}):
        r = await shop.api.post(
            f"/v1/orders/{delivered['order_no']}/refunds",
            json=body,
            headers={**shop.as_(Role.SERVICE), "Idempotency-Key": uuid.uuid4().hex},
        )
        assert r.status_code == 422
    assert (await shop.request_refund(delivered["order_no"], 100, role=Role.OPERATOR)).status_code == 403
    assert await refund_count(shop) == before
    assert (await shop.order(delivered["order_no"]))["refunded_minor"] == 0


async def test_a_transient_channel_failure_is_retried_until_it_succeeds(shop):
    order = await delivered_order(shop)
    await shop.faults("wechat", refund_failure="transient")
    r = await shop.request_refund(order["order_no"], 700)
    assert r.status_code == 202
    await asyncio.sleep(3)
    assert (await shop.refund(r.json()["refund_no"]))["status"] == "PROCESSING"
    assert await shop.channel_refunds("wechat", order["payments"][0]["payment_no"]) == []
    await shop.reset_faults()
    await shop.refunded(order["order_no"], 700, within=30)


async def test_a_permanent_failure_becomes_a_manual_transfer_that_another_person_approves(shop, temporal):
    async with unit_of_work(shop.sessions) as session:
        _, alice = await issue_key(session, role=Role.FINANCE, name="alice")
        _, bob = await issue_key(session, role=Role.FINANCE, name="bob")
    order = await delivered_order(shop)
    await shop.faults("wechat", refund_failure="permanent")
    r = await shop.request_refund(order["order_no"], 1500, as_key=alice, reason="damaged")
    refund_no = r.json()["refund_no"]

    async def pending() -> dict | None:  # type: ignore[type-arg]
        refund = await shop.refund(refund_no)
        return refund if refund["status"] == "MANUAL_PENDING" else None

    refund = await eventually(pending, 20)
    assert refund["failure_reason"] == "ACCOUNT_CLOSED"
    assert [a["status"] for a in refund["attempts"]] == ["REQUESTED", "FAILED", "ESCALATED"]
    details = await stage_of(temporal, f"refund-{refund_no}", "AWAITING_FINANCE_APPROVAL")
    assert refund_no in details and order["order_no"] in details and "ACCOUNT_CLOSED" in details
    await eventually(lambda: _reminded(temporal, refund_no), 10)

    # ...and an operator hunting stuck flows finds it, since it has waited past its reminder period.
    stuck = (await shop.api.get("/v1/ops/stuck", headers=shop.as_(Role.OPERATOR))).json()
    assert {(f["workflow_id"], f["stage"]) for f in stuck} >= {(f"refund-{refund_no}", "AWAITING_FINANCE_APPROVAL")}
    assert (await shop.api.get("/v1/ops/stuck", headers=shop.as_(Role.FINANCE))).status_code == 403

    url = f"/v1/refunds/{refund_no}/manual-transfer/approve"
    own = await shop.api.post(url, json={"note": "mine"}, headers=bearer(alice))
    assert own.status_code == 403 and "cannot approve" in own.json()["detail"]
    assert (await shop.api.post(url, json={}, headers=shop.as_(Role.SERVICE))).status_code == 403
    bank_before = await shop.balance(bank_payout("platform"))
    ok = await shop.api.post(url, json={"note": "paid by transfer"}, headers=bearer(bob))
    assert ok.status_code == 200, ok.text
    assert ok.json()["status"] == "MANUAL_PAID"
    await shop.refunded(order["order_no"], 1500)
    assert await shop.balance(bank_payout("platform")) == bank_before - 1500
    refund = await shop.refund(refund_no)
    assert refund["status"] == "MANUAL_PAID" and "bob" in refund["approved_by"]
    again = await shop.api.post(url, json={}, headers=bearer(bob))
    assert again.status_code == 409
    async with unit_of_work(shop.sessions) as session:
        audit = (await session.execute(select(AuditEvent).where(AuditEvent.subject_id == refund_no))).scalars().all()
    assert [(a.action, a.actor.split(":")[1].split("#")[0]) for a in audit] == [
        ("refund.manual_transfer_approved", "bob")
    ]


async def _reminded(temporal, refund_no: str) -> bool:  # type: ignore[no-untyped-def]
    return "reminder" in await stage_of(temporal, f"refund-{refund_no}", "AWAITING_FINANCE_APPROVAL")


async def test_a_refund_survives_a_worker_crash_with_one_channel_refund_and_one_entry(shop):
    order = await delivered_order(shop)
    await shop.faults("wechat", callback_delay_ms=3000)
    r = await shop.request_refund(order["order_no"], 900)
    refund_no = r.json()["refund_no"]
    await eventually(lambda: shop.channel_refunds("wechat", order["payments"][0]["payment_no"]), 10)
    shop.services.children["worker"].kill()
    await asyncio.sleep(4)  # the channel's result arrives while no worker runs
    shop.services.start("worker")
    await shop.refunded(order["order_no"], 900, within=40)
    refunds = await shop.channel_refunds("wechat", order["payments"][0]["payment_no"])
    assert [(x["out_refund_no"], x["status"]) for x in refunds] == [(refund_no, "SUCCESS")]
    assert await shop.ledger_entries(refund_no) == 1


async def test_money_paid_twice_through_two_channels_is_refunded_once(shop):
    """The first channel timed out on create but had opened the order; the customer paid on both."""
    merchant_id = await shop.merchant()
    await shop.faults("wechat", down=True)
    placed = await shop.placed(merchant_id, channel="wechat")
    payment_no, amount = placed["payment"]["payment_no"], placed["payable_minor"]
    assert placed["payment"]["channel"] == "alipay"
    await shop.reset_faults()
    # What the lost first create had done at wechat (signed as the platform signs):
    body = json.dumps(
        {
            "out_trade_no": payment_no,
            "amount_minor": amount,
            "currency": "CNY",
            "description": "lost create",
            "notify_url": f"{shop.services.api_url}/v1/callbacks/wechat",
        }
    )
    created = await shop.outside.post(
        "/wechat/v1/orders",
        content=body,
        headers=signed_headers(DEV_PARTY_SECRETS["wechat"], "POST", "/wechat/v1/orders", body.encode()),
    )
    assert created.status_code == 200, created.text
    assert (await shop.pay(created.json()["pay_url"])).status_code == 200
    await shop.pay(placed["payment"]["pay_url"])
    order = await shop.reaches(placed["order_no"], "AWAITING_MERCHANT")
    assert order["paid_minor"] == amount

    async def duplicate_refunded() -> list | None:  # type: ignore[type-arg]
        refunds = (await shop.order(placed["order_no"]))["refunds"]
        return refunds if refunds and refunds[0]["status"] == "SUCCEEDED" else None

    refunds = await eventually(duplicate_refunded, 30)
    # Whichever payment the platform learned of first is the order's; the other one goes back.
    kept = order["payments"][0]["channel"]
    other = "alipay" if kept == "wechat" else "wechat"
    assert [(r["channel"], r["amount_minor"], r["origin"]) for r in refunds] == [(other, amount, "payment")]
    assert [r["status"] for r in await shop.channel_refunds(other, payment_no)] == ["SUCCESS"]
    assert await shop.channel_refunds(kept, payment_no) == []
    assert await shop.ledger_entries(payment_no, "PAYMENT_CAPTURED") == 2
    order = await shop.order(placed["order_no"])
    assert order["paid_minor"] == amount and order["refunded_minor"] == 0  # the order keeps its one payment
