"""Callbacks: signature and freshness checked before anything is stored; redeliveries change nothing."""

from __future__ import annotations

import json
import time
import uuid

from sqlalchemy import func, select

from db.engine import unit_of_work
from db.models import InboundNotification
from domain.settings import DEV_PARTY_SECRETS
from domain.signing import signed_headers
from tests.integration.test_api_basics import assert_problem


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


async def stored(sessions, event_id: str) -> int:  # type: ignore[no-untyped-def]
    async with unit_of_work(sessions) as session:
        q = select(func.count()).select_from(InboundNotification).where(InboundNotification.event_id == event_id)
        return int((await session.execute(q)).scalar_one())


async def test_a_signed_callback_is_stored_once_and_redelivery_is_a_duplicate(api, sessions):
    body = notification()
    event_id = json.loads(body)["event_id"]
    headers = {**signed_headers(DEV_PARTY_SECRETS["wechat"], body), "content-type": "application/json"}
    first = await api.post("/v1/callbacks/wechat", content=body, headers=headers)
    assert first.status_code == 200, first.text
    # No payment flow with that number exists: the notification is kept for operators.
    assert first.json()["status"] == "stored"
    again = await api.post("/v1/callbacks/wechat", content=body, headers=headers)
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
    forged = signed_headers("not-the-secret", body)
    stale = signed_headers(DEV_PARTY_SECRETS["wechat"], body, now=time.time() - 301)
    other_party = signed_headers(DEV_PARTY_SECRETS["alipay"], body)
    for headers, says in (
        (forged, "does not match"),
        (stale, "away from now"),
        ({}, "missing"),
        (other_party, "does not match"),
    ):
        assert_problem(await api.post("/v1/callbacks/wechat", content=body, headers=headers), 401, says=says)
    tampered = body.replace(b'"amount_minor": 100', b'"amount_minor": 1')
    assert_problem(
        await api.post(
            "/v1/callbacks/wechat", content=tampered, headers=signed_headers(DEV_PARTY_SECRETS["wechat"], body)
        ),
        401,
        says="does not match",
    )
    assert await stored(sessions, event_id) == 0


async def test_unknown_party_and_malformed_bodies_are_4xx(api, sessions):
    body = notification()
    assert_problem(
        await api.post("/v1/callbacks/paypal", content=body, headers=signed_headers("x", body)), 404, says="paypal"
    )
    for bad in (b"not json", b"[]", json.dumps({"event_type": "payment.succeeded"}).encode()):
        r = await api.post(
            "/v1/callbacks/alipay", content=bad, headers=signed_headers(DEV_PARTY_SECRETS["alipay"], bad)
        )
        assert_problem(r, 400, says="not valid")
