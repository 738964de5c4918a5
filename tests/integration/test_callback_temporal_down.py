"""A payment callback that arrives while the API cannot reach Temporal: it is kept, answered 503 so the
channel delivers it again, and the redelivery reaches the payment flow: the order is paid once."""

from __future__ import annotations

import json
from typing import Any

from sqlalchemy import select

from db.engine import unit_of_work
from db.models import InboundNotification
from tests.integration.test_callbacks import signed
from tests.support.sandbox_receiver import eventually
from tests.support.shop import Shop
from tests.support.stack import restart_api
from tests.support.tcp_proxy import TcpProxy


async def notification_row(shop: Shop, event_id: str) -> InboundNotification | None:
    async with unit_of_work(shop.sessions) as session:
        q = select(InboundNotification).where(
            InboundNotification.party == "wechat", InboundNotification.event_id == event_id
        )
        return (await session.execute(q)).scalar_one_or_none()


async def test_a_callback_while_temporal_is_down_is_503_and_its_redelivery_pays_the_order(shop, temporal_address):
    services = shop.services
    original = services.env
    proxy = TcpProxy(temporal_address).start()
    try:
        # A long payment deadline: the payment can only be learned from the callback (the query API is
        # down too), never from the close at the deadline.
        await restart_api(
            services,
            {**original, "TEMPORAL_ADDRESS": proxy.address, "BACKOFFICE_PAYMENT_TIMEOUT_SECONDS": "120"},
        )
        merchant_id = await shop.merchant()
        await shop.faults("wechat", query_down=True)
        placed = await shop.placed(merchant_id, channel="wechat")
        payment_no = placed["payment"]["payment_no"]

        proxy.down()
        assert (await shop.pay(placed["payment"]["pay_url"])).status_code == 200

        async def refused_once() -> dict[str, Any] | None:
            notes = (await shop.outside.get("/_sandbox/notifications", params={"ref": payment_no})).json()
            return notes[0] if notes and notes[0]["failures"] >= 1 else None

        note = await eventually(refused_once, 30)
        assert note["delivered_at"] is None and note["event_type"] == "payment.succeeded"
        # What the channel got, seen first hand: the same notification, answered 503.
        body = json.dumps(note["body"]).encode()
        r = await shop.api.post("/v1/callbacks/wechat", content=body, headers=signed("wechat", body))
        assert r.status_code == 503 and r.json()["code"] == "TEMPORAL_UNAVAILABLE", r.text
        row = await notification_row(shop, note["event_id"])
        assert row is not None and row.routed_at is None and row.refused_reason is None  # kept, not yet delivered
        order = await shop.order(placed["order_no"])
        assert order["status"] == "AWAITING_PAYMENT" and order["paid_minor"] == 0
        assert await shop.ledger_entries(payment_no) == 0

        proxy.up()
        order = await shop.reaches(placed["order_no"], "AWAITING_MERCHANT", within=60)
        assert order["paid_minor"] == placed["payable_minor"]
        assert await shop.ledger_entries(payment_no, "PAYMENT_CAPTURED") == 1
        row = await notification_row(shop, note["event_id"])
        assert row is not None and row.routed_at is not None and row.route_error is None

        async def delivered_once() -> dict[str, Any] | None:
            # The channel records the delivery when the answer reaches it, which can be after the order moved.
            [note] = (await shop.outside.get("/_sandbox/notifications", params={"ref": payment_no})).json()
            return note if note["delivered_at"] else None

        delivered = await eventually(delivered_once, 30)
        assert delivered["deliveries"] == 1 and delivered["attempts"] >= 2
    finally:
        proxy.up()
        await restart_api(services, original)
        proxy.close()
