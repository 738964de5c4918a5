"""Refund callbacks as channels really send them: twice, contradicting an earlier success, or not at all."""

from __future__ import annotations

import json
import uuid
from typing import Any

from sqlalchemy import select

from db.engine import unit_of_work
from db.models import InboundNotification
from tests.integration.test_callbacks import signed
from tests.integration.test_refunds import delivered_order, refund_reaches, statuses
from tests.support.sandbox_receiver import eventually
from tests.support.shop import Shop


async def channel_notes(shop: Shop, refund_no: str) -> list[dict[str, Any]]:
    r = await shop.outside.get("/_sandbox/notifications", params={"ref": refund_no})
    assert r.status_code == 200, r.text
    return [n for n in r.json() if n["event_type"].startswith("refund.")]


async def stored_notes(shop: Shop, refund_no: str) -> list[InboundNotification]:
    async with unit_of_work(shop.sessions) as session:
        q = select(InboundNotification).where(InboundNotification.subject_ref == refund_no)
        return list((await session.execute(q)).scalars())


async def test_duplicate_refund_callbacks_post_the_refund_once(shop):
    order = await delivered_order(shop, channel="alipay")
    await shop.faults("alipay", duplicate_callbacks=True)
    r = await shop.request_refund(order["order_no"], 1300)
    assert r.status_code == 202, r.text
    refund_no = r.json()["refund_no"]

    async def delivered_twice() -> list[dict[str, Any]] | None:
        notes = await channel_notes(shop, refund_no)
        return notes if notes and all(n["deliveries"] >= 2 for n in notes) else None

    [note] = await eventually(delivered_twice, 20)
    assert note["event_type"] == "refund.succeeded"
    await refund_reaches(shop, refund_no, "SUCCEEDED")
    # ...and once more, by hand, after the refund is long finished.
    assert (await shop.outside.post(f"/_sandbox/alipay/notifications/{note['event_id']}/redeliver")).status_code == 200

    async def delivered_thrice() -> list[dict[str, Any]] | None:
        notes = await channel_notes(shop, refund_no)
        return notes if notes[0]["deliveries"] >= 3 else None

    await eventually(delivered_thrice, 20)
    order = await shop.refunded(order["order_no"], 1300)
    assert [(x["refund_no"], x["amount_minor"], x["status"]) for x in order["refunds"]] == [
        (refund_no, 1300, "SUCCEEDED")
    ]
    assert await shop.ledger_entries(refund_no) == 1
    assert statuses(await shop.refund(refund_no)) == ["REQUESTED", "SUCCEEDED"]
    [stored] = await stored_notes(shop, refund_no)
    assert stored.event_id == note["event_id"] and stored.routed_at is not None and stored.refused_reason is None


async def test_a_failed_callback_after_success_is_ignored_and_posts_nothing(shop):
    order = await delivered_order(shop)
    r = await shop.request_refund(order["order_no"], 2100)
    refund_no = r.json()["refund_no"]
    done = await refund_reaches(shop, refund_no, "SUCCEEDED")
    payment_no = order["payments"][0]["payment_no"]
    body = json.dumps(
        {
            "event_id": f"evt-late-{uuid.uuid4().hex}",
            "event_type": "refund.failed",
            "party": "wechat",
            "out_trade_no": payment_no,
            "out_refund_no": refund_no,
            "amount_minor": 2100,
            "currency": "CNY",
            "status": "FAILED",
            "failure_reason": "ACCOUNT_CLOSED",
        }
    ).encode()
    late = await shop.api.post("/v1/callbacks/wechat", content=body, headers=signed("wechat", body))
    assert late.status_code == 200, late.text
    assert late.json()["status"] in ("accepted", "stored"), late.text  # kept for operators, acted on by no one
    again = await shop.api.post("/v1/callbacks/wechat", content=body, headers=signed("wechat", body))
    assert again.status_code == 200 and again.json()["status"] == "duplicate", again.text
    after = await shop.refund(refund_no)
    assert after["status"] == "SUCCEEDED" and statuses(after) == statuses(done) == ["REQUESTED", "SUCCEEDED"]
    assert after["failure_reason"] is None
    order = await shop.refunded(order["order_no"], 2100)
    assert [r["status"] for r in order["refunds"]] == ["SUCCEEDED"]
    assert await shop.ledger_entries(refund_no) == 1
    assert [(x["out_refund_no"], x["status"]) for x in await shop.channel_refunds("wechat", payment_no)] == [
        (refund_no, "SUCCESS")
    ]


async def test_a_lost_refund_callback_is_found_by_polling(shop):
    order = await delivered_order(shop, channel="alipay")
    await shop.faults("alipay", drop_callbacks=True)
    r = await shop.request_refund(order["order_no"], 900)
    refund_no = r.json()["refund_no"]
    refund = await refund_reaches(shop, refund_no, "SUCCEEDED")
    assert statuses(refund) == ["REQUESTED", "SUCCEEDED"]
    await shop.refunded(order["order_no"], 900)
    notes = await channel_notes(shop, refund_no)
    assert notes and all(n["dropped"] and n["deliveries"] == 0 for n in notes), notes  # never heard
    assert await stored_notes(shop, refund_no) == []
    [at_channel] = await shop.channel_refunds("alipay", order["payments"][0]["payment_no"])
    assert (at_channel["out_refund_no"], at_channel["status"]) == (refund_no, "SUCCESS")
    assert at_channel["query_calls"] >= 1 and at_channel["request_calls"] == 1
    assert await shop.ledger_entries(refund_no) == 1
