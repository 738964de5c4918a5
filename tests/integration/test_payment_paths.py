"""Payment: lost, duplicated, forged and late callbacks, channel outages, deadlines and races."""

from __future__ import annotations

import json
import time
import uuid

from sqlalchemy import text

from db.engine import unit_of_work
from domain.settings import DEV_PARTY_SECRETS
from domain.signing import signed_headers
from tests.support.sandbox_receiver import eventually
from tests.support.shop import refused_with, stage_of
from workflows.ids import payment_workflow_id


async def test_a_lost_callback_is_made_good_by_polling(shop):
    merchant_id = await shop.merchant()
    await shop.faults("wechat", drop_callbacks=True)
    placed = await shop.placed(merchant_id, channel="wechat")
    await shop.pay(placed["payment"]["pay_url"])
    order = await shop.reaches(placed["order_no"], "AWAITING_MERCHANT", within=15)
    assert order["paid_minor"] == placed["payable_minor"]
    notes = (await shop.outside.get("/_sandbox/notifications", params={"ref": placed["payment"]["payment_no"]})).json()
    assert notes and all(n["dropped"] for n in notes)  # the platform never heard the callback


async def test_a_duplicated_callback_captures_once(shop):
    merchant_id = await shop.merchant()
    await shop.faults("alipay", duplicate_callbacks=True)
    placed = await shop.placed(merchant_id, channel="alipay")
    payment_no = placed["payment"]["payment_no"]
    await shop.pay(placed["payment"]["pay_url"])
    await shop.reaches(placed["order_no"], "AWAITING_MERCHANT")

    async def delivered_twice() -> list[dict]:  # type: ignore[type-arg]
        notes = (await shop.outside.get("/_sandbox/notifications", params={"ref": payment_no})).json()
        return notes if notes and all(n["delivered_at"] for n in notes) else []

    await eventually(delivered_twice, 10)
    # ...and once more by hand, long after the payment completed.
    event_id = (await delivered_twice())[0]["event_id"]
    assert (await shop.outside.post(f"/_sandbox/alipay/notifications/{event_id}/redeliver")).status_code == 200
    await eventually(delivered_twice, 10)
    assert await shop.ledger_entries(payment_no, "PAYMENT_CAPTURED") == 1
    order = await shop.order(placed["order_no"])
    assert order["paid_minor"] == placed["payable_minor"]
    assert [e["event"] for e in order["timeline"]].count("paid") == 1


async def test_forged_or_stale_callbacks_change_nothing(shop):
    merchant_id = await shop.merchant()
    placed = await shop.placed(merchant_id, channel="wechat")
    payment_no = placed["payment"]["payment_no"]
    body = json.dumps(
        {
            "event_id": f"forged-{payment_no}",
            "event_type": "payment.succeeded",
            "party": "wechat",
            "out_trade_no": payment_no,
            "amount_minor": placed["payable_minor"],
            "currency": "CNY",
            "status": "SUCCESS",
        }
    ).encode()
    for headers in (
        signed_headers("guessed-secret", "POST", "/v1/callbacks/wechat", body),
        signed_headers(DEV_PARTY_SECRETS["wechat"], "POST", "/v1/callbacks/wechat", body, now=time.time() - 600),
    ):
        r = await shop.api.post("/v1/callbacks/wechat", content=body, headers=headers)
        refused_with(r, 401, "SIGNATURE_INVALID")
    order = await shop.order(placed["order_no"])
    assert order["status"] == "AWAITING_PAYMENT" and order["paid_minor"] == 0
    assert await shop.ledger_entries(payment_no) == 0


async def test_a_channel_down_at_create_fails_over_to_the_next(shop):
    merchant_id = await shop.merchant()
    await shop.faults("wechat", down=True)
    placed = await shop.placed(merchant_id, channel="wechat")
    assert placed["payment"]["channel"] == "alipay"
    await shop.pay(placed["payment"]["pay_url"])
    order = await shop.reaches(placed["order_no"], "AWAITING_MERCHANT")
    attempts = order["payments"][0]["attempts"]
    assert [(a["channel"], a["status"]) for a in attempts] == [("wechat", "FAILED"), ("alipay", "PAID")]
    assert "down" in attempts[0]["error"]


async def test_every_channel_down_refuses_the_order_with_503(shop):
    merchant_id = await shop.merchant()
    await shop.faults("wechat", down=True)
    await shop.faults("alipay", down=True)
    r = await shop.place(merchant_id)
    assert r.status_code == 503 and "no payment channel" in r.json()["detail"]

    async def recorded() -> list[tuple[str, str, str, str]]:
        async with unit_of_work(shop.sessions) as session:
            rows = await session.execute(
                text(
                    "SELECT o.status, o.cancel_reason, p.status, string_agg(a.status, ',' ORDER BY a.seq)"
                    " FROM payments p JOIN orders o ON o.order_no = p.order_no"
                    " JOIN payment_attempts a ON a.payment_no = p.payment_no"
                    " WHERE p.merchant_id = :m GROUP BY o.status, o.cancel_reason, p.status"
                ),
                {"m": merchant_id},
            )
            return [tuple(row) for row in rows if row[0] == "CANCELLED"]

    # The order was recorded, then cancelled; the payment failed after both channels refused.
    [(_, reason, payment_status, attempts)] = await eventually(recorded)
    assert "no payment channel" in reason and payment_status == "FAILED" and attempts == "FAILED,FAILED"


async def test_payment_timeout_cancels_releases_stock_and_closes_the_channel_order(shop, temporal):
    merchant_id = await shop.merchant()
    sku = f"sku-{uuid.uuid4().hex[:8]}"
    await shop.stock(merchant_id, sku, 5)
    item = {"sku_id": sku, "name": "Window cleaning", "category_id": "home", "unit_price_minor": 3000, "quantity": 1}
    placed = await shop.placed(merchant_id, channel="wechat", items=[item])
    assert await shop.available(merchant_id, sku) == 4
    details = await stage_of(temporal, payment_workflow_id(placed["payment"]["payment_no"]), "AWAITING_PAYMENT")
    assert "waiting for payment" in details and "deadline" in details
    order = await shop.reaches(placed["order_no"], "CANCELLED", within=25)
    assert order["cancel_reason"] == "payment deadline passed"
    assert await shop.available(merchant_id, sku) == 5
    channel_order = await shop.channel_order("wechat", placed["payment"]["payment_no"])
    assert channel_order["status"] == "CLOSED"
    assert (await shop.pay(placed["payment"]["pay_url"])).status_code == 409  # too late to pay
    order = await shop.reaches(placed["order_no"], "CANCELLED")
    assert order["payments"][0]["status"] == "CLOSED" and order["paid_minor"] == 0


async def test_a_payment_made_at_the_deadline_wins_the_race(shop):
    """Callback lost and the query API down: the platform learns of the payment only when its close at
    the deadline is refused because the customer had paid. The order goes on as paid."""
    merchant_id = await shop.merchant()
    await shop.faults("wechat", drop_callbacks=True, query_down=True)
    placed = await shop.placed(merchant_id, channel="wechat")
    await shop.pay(placed["payment"]["pay_url"])
    order = await shop.reaches(placed["order_no"], "AWAITING_MERCHANT", within=25)
    assert order["paid_minor"] == placed["payable_minor"] and order["cancel_reason"] is None
    assert await shop.ledger_entries(placed["payment"]["payment_no"], "PAYMENT_CAPTURED") == 1


async def test_a_payment_that_succeeds_after_the_order_was_cancelled_is_surfaced(shop, temporal):
    """The channel is unreachable at the deadline: the order is cancelled without waiting for it, and
    when the close finally goes through it turns out the customer had paid."""
    merchant_id = await shop.merchant()
    await shop.faults("wechat", drop_callbacks=True, query_down=True)
    placed = await shop.placed(merchant_id, channel="wechat")
    payment_no = placed["payment"]["payment_no"]
    await shop.pay(placed["payment"]["pay_url"])
    await shop.faults("wechat", down=True)
    order = await shop.reaches(placed["order_no"], "CANCELLED", within=40)
    assert order["paid_minor"] == 0 and await shop.ledger_entries(payment_no) == 0
    await shop.reset_faults()

    order = await shop.refunded(placed["order_no"], placed["payable_minor"], within=40)
    assert order["payments"][0]["paid_after_cancel"] is True and order["status"] == "CANCELLED"
    assert order["refund_required_minor"] == placed["payable_minor"]
    assert await shop.ledger_entries(payment_no, "PAYMENT_CAPTURED") == 1
    details = await stage_of(temporal, payment_workflow_id(payment_no), "PAID_AFTER_CANCEL")
    assert "must be refunded" in details
    assert [r["status"] for r in await shop.channel_refunds("wechat", payment_no)] == ["SUCCESS"]
