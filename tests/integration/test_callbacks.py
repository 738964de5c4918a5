"""Callbacks: signature, freshness and nonce checked before anything is stored; redeliveries change
nothing; a callback is bound to the party whose secret verified it and to what the platform asked for."""

from __future__ import annotations

import json
import time
import uuid

from sqlalchemy import func, select

from db.engine import unit_of_work
from db.models import InboundNotification, Payment
from domain.access import Role
from domain.settings import DEV_PARTY_SECRETS
from domain.signing import signed_headers
from tests.integration.test_api_basics import assert_problem
from tests.support.shop import refused_with


def notification(**extra: object) -> bytes:
    body = {
        "event_id": f"evt-{uuid.uuid4().hex}",
        "event_type": "payment.succeeded",
        "out_trade_no": "pay-none",
        "amount_minor": 100,
        "currency": "CNY",
        **extra,
    }
    return json.dumps(body).encode()


def signed(party: str, body: bytes, *, path: str | None = None, **kw: object) -> dict[str, str]:
    """Headers as `party` signs a callback to the platform (`path`: where the signature was made for)."""
    return {
        **signed_headers(DEV_PARTY_SECRETS[party], "POST", path or f"/v1/callbacks/{party}", body, **kw),  # type: ignore[arg-type]
        "content-type": "application/json",
    }


async def stored(sessions, event_id: str) -> int:  # type: ignore[no-untyped-def]
    async with unit_of_work(sessions) as session:
        q = select(func.count()).select_from(InboundNotification).where(InboundNotification.event_id == event_id)
        return int((await session.execute(q)).scalar_one())


async def test_a_signed_callback_is_stored_once_and_redelivery_is_a_duplicate(api, sessions):
    body = notification()
    event_id = json.loads(body)["event_id"]
    first = await api.post("/v1/callbacks/wechat", content=body, headers=signed("wechat", body))
    assert first.status_code == 200, first.text
    # No payment flow with that number exists: the notification is kept for operators.
    assert first.json()["status"] == "stored"
    # A redelivery is signed afresh (a new nonce), as every party does.
    again = await api.post("/v1/callbacks/wechat", content=body, headers=signed("wechat", body))
    assert again.status_code == 200 and again.json()["status"] == "duplicate"
    assert await stored(sessions, event_id) == 1
    async with unit_of_work(sessions) as session:
        row = (
            await session.execute(select(InboundNotification).where(InboundNotification.event_id == event_id))
        ).scalar_one()
    assert (
        row.raw_body == body.decode() and row.subject_ref == "pay-none" and "no running flow" in (row.route_error or "")
    )


async def test_forged_stale_or_unsigned_callbacks_are_401_and_nothing_is_stored(api, sessions):
    body = notification()
    event_id = json.loads(body)["event_id"]
    forged = signed_headers("not-the-secret", "POST", "/v1/callbacks/wechat", body)
    for headers, says in (
        (forged, "does not match"),
        (signed("wechat", body, now=time.time() - 301), "away from now"),
        ({}, "missing"),
        (signed("alipay", body, path="/v1/callbacks/wechat"), "does not match"),
    ):
        assert_problem(await api.post("/v1/callbacks/wechat", content=body, headers=headers), 401, says=says)
    tampered = body.replace(b'"amount_minor": 100', b'"amount_minor": 1')
    assert_problem(
        await api.post("/v1/callbacks/wechat", content=tampered, headers=signed("wechat", body)),
        401,
        says="does not match",
    )
    assert await stored(sessions, event_id) == 0


async def test_a_captured_signature_is_refused_on_another_path_and_a_nonce_is_accepted_once(api, sessions):
    body = notification()
    event_id = json.loads(body)["event_id"]
    # What the platform sent wechat (same secret, other direction), replayed at the platform's receiver:
    for elsewhere in ("/wechat/v1/orders", "/v1/callbacks/alipay", "/v1/callbacks/wechat?again=1"):
        r = await api.post("/v1/callbacks/wechat", content=body, headers=signed("wechat", body, path=elsewhere))
        assert_problem(r, 401, says="does not match")
    assert await stored(sessions, event_id) == 0
    headers = signed("wechat", body)
    assert (await api.post("/v1/callbacks/wechat", content=body, headers=headers)).status_code == 200
    # The very same signed request again, within the freshness window: a replay.
    replay = await api.post("/v1/callbacks/wechat", content=body, headers=headers)
    assert_problem(replay, 401, says="already used")
    assert await stored(sessions, event_id) == 1


async def test_unknown_party_and_malformed_bodies_are_4xx(api, sessions):
    body = notification()
    assert_problem(
        await api.post(
            "/v1/callbacks/paypal", content=body, headers=signed_headers("x", "POST", "/v1/callbacks/paypal", body)
        ),
        404,
        says="paypal",
    )
    for bad in (b"not json", b"[]", json.dumps({"event_type": "payment.succeeded"}).encode()):
        r = await api.post("/v1/callbacks/alipay", content=bad, headers=signed("alipay", bad))
        assert_problem(r, 400, says="not valid")


async def test_callbacks_about_another_partys_payment_or_another_amount_are_refused_and_listed(shop):
    merchant_id = await shop.merchant()
    placed = await shop.placed(merchant_id, channel="wechat")
    payment_no, amount = placed["payment"]["payment_no"], placed["payable_minor"]
    assert placed["payment"]["channel"] == "wechat"

    def paid(party: str, **extra: object) -> bytes:
        fields: dict[str, object] = {
            "event_id": f"evt-{party}-{uuid.uuid4().hex}",
            "party": party,
            "out_trade_no": payment_no,
            "amount_minor": amount,
            "currency": "CNY",
            "status": "SUCCESS",
            "channel_txn_id": "txn-forged",
        }
        return notification(**{**fields, **extra})

    attempts = [
        ("wechat", paid("wechat", amount_minor=amount - 1), f"asked for {amount} CNY"),
        ("wechat", paid("wechat", amount_minor=amount * 10), f"asked for {amount} CNY"),
        ("wechat", paid("wechat", currency="USD"), f"asked for {amount} CNY"),
        # Alipay's valid signature, on a body claiming to be wechat's:
        ("alipay", paid("wechat"), "names party 'wechat' but is signed by 'alipay'"),
        # Alipay speaking for itself about an order that was never opened at Alipay:
        ("alipay", paid("alipay"), f"payment {payment_no} was not sent to alipay"),
        # The bank may report payouts, not payments:
        ("bank", paid("wechat"), "bank may not send 'payment.succeeded'"),
        ("bank", paid("bank"), "bank may not send 'payment.succeeded'"),
    ]
    for party, body, says in attempts:
        r = await shop.api.post(f"/v1/callbacks/{party}", content=body, headers=signed(party, body))
        assert_problem(r, 422, says=says)
        # A redelivery of a refused notification is refused again, never acted on.
        r = await shop.api.post(f"/v1/callbacks/{party}", content=body, headers=signed(party, body))
        assert_problem(r, 422, says=says)

    async with unit_of_work(shop.sessions) as session:
        payment = await session.get(Payment, payment_no)
    assert payment is not None and payment.status == "PENDING" and payment.channel_txn_id is None
    assert await shop.ledger_entries(payment_no) == 0
    order = await shop.order(placed["order_no"])
    assert order["status"] == "AWAITING_PAYMENT" and order["paid_minor"] == 0

    listed = await shop.api.get(
        "/v1/callbacks/refused", params={"subject_ref": payment_no}, headers=shop.as_(Role.OPERATOR)
    )
    assert listed.status_code == 200, listed.text
    reasons = sorted((n["party"], n["reason"]) for n in listed.json())
    assert len(reasons) == len(attempts)
    assert all(any(says in reason for _, reason in reasons) for _, _, says in attempts)
    refused_with(await shop.api.get("/v1/callbacks/refused", headers=shop.as_(Role.SERVICE)), 403, "FORBIDDEN")

    # The payment itself is untouched: the customer pays at wechat and it is captured once, in full.
    await shop.pay(placed["payment"]["pay_url"])
    order = await shop.reaches(placed["order_no"], "AWAITING_MERCHANT")
    assert order["paid_minor"] == amount
    assert await shop.ledger_entries(payment_no, "PAYMENT_CAPTURED") == 1
    async with unit_of_work(shop.sessions) as session:
        payment = await session.get(Payment, payment_no)
    assert payment is not None and payment.channel == "wechat" and payment.channel_txn_id != "txn-forged"
