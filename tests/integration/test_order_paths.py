"""The order flow's other paths: cancellation, timeouts, re-dispatch, auto-confirm, refused decisions."""

from __future__ import annotations

import uuid

from domain.access import Role
from tests.support.sandbox_receiver import eventually
from tests.support.shop import bearer, record_history, refused_with, stage_of
from workflows.ids import order_workflow_id, payment_workflow_id


async def paid_order(shop, **overrides):  # type: ignore[no-untyped-def]
    merchant_id = await shop.merchant()
    placed = await shop.placed(merchant_id, **overrides)
    await shop.pay(placed["payment"]["pay_url"])
    return await shop.reaches(placed["order_no"], "AWAITING_MERCHANT")


async def in_service(shop):  # type: ignore[no-untyped-def]
    order = await paid_order(shop)
    assert (await shop.accept(order)).status_code == 200
    provider = await shop.offered_provider(order["order_no"])
    assert (await shop.fulfil(order["order_no"], "provider_accepted", provider)).status_code == 200
    return order["order_no"], provider


async def test_cancel_before_payment_releases_stock_and_closes_the_channel_order(shop, temporal):
    merchant_id = await shop.merchant()
    sku = f"sku-{uuid.uuid4().hex[:8]}"
    await shop.stock(merchant_id, sku, 3)
    items = [{"sku_id": sku, "name": "Massage 1h", "category_id": "wellness", "unit_price_minor": 12000, "quantity": 2}]
    placed = await shop.placed(merchant_id, items=items, channel="alipay")
    assert await shop.available(merchant_id, sku) == 1
    r = await shop.api.post(
        f"/v1/orders/{placed['order_no']}/cancel", json={"reason": "changed my mind"}, headers=shop.as_(Role.SERVICE)
    )
    assert r.status_code == 200, r.text
    assert r.json()["status"] == "CANCELLED"
    assert await shop.available(merchant_id, sku) == 3

    # The payment closes its channel order after the order is cancelled, then records it.
    async def payment_closed() -> bool:
        return (await shop.order(placed["order_no"]))["payments"][0]["status"] == "CLOSED"

    await eventually(payment_closed, 15)
    assert (await shop.channel_order("alipay", placed["payment"]["payment_no"]))["status"] == "CLOSED"
    order = await shop.order(placed["order_no"])
    assert order["cancel_reason"] == "changed my mind" and order["status"] == "CANCELLED"
    again = await shop.api.post(
        f"/v1/orders/{placed['order_no']}/cancel", json={"reason": "again"}, headers=shop.as_(Role.SERVICE)
    )
    refused_with(again, 409, "FLOW_NOT_RUNNING")
    await temporal.get_workflow_handle(payment_workflow_id(placed["payment"]["payment_no"])).result()
    order_id, payment_id = order_workflow_id(placed["order_no"]), payment_workflow_id(placed["payment"]["payment_no"])
    await record_history(temporal, order_id, "order_opens_payment_cancelled_before_payment")
    await record_history(temporal, payment_id, "payment_opened_by_order_cancelled")


async def test_cancel_after_payment_before_acceptance_refunds_in_full(shop):
    order = await paid_order(shop)
    r = await shop.api.post(
        f"/v1/orders/{order['order_no']}/cancel",
        json={"reason": "found another provider"},
        headers=shop.as_(Role.SERVICE),
    )
    assert r.status_code == 200 and r.json()["status"] == "CANCELLED" and r.json()["refund_no"]
    # The merchant's late accept while the refund runs (the flow is waiting for it): refused by the flow.
    # Once the refund is through the flow ends, and how soon after the refunded amount shows is a race.
    late = await shop.accept(order)
    refused_with(late, 409, "NOT_ACCEPTABLE")
    order = await shop.refunded(order["order_no"], order["paid_minor"])
    assert order["cancel_reason"] == "found another provider"


async def test_an_accepted_order_cannot_be_cancelled(shop):
    order = await paid_order(shop)
    assert (await shop.accept(order)).status_code == 200
    r = await shop.api.post(
        f"/v1/orders/{order['order_no']}/cancel", json={"reason": "late"}, headers=shop.as_(Role.SERVICE)
    )
    assert "has not accepted" in refused_with(r, 409, "NOT_CANCELLABLE")["detail"]
    assert (await shop.order(order["order_no"]))["status"] == "DISPATCHING"


async def test_merchant_accept_timeout_cancels_and_refunds(shop, temporal):
    order = await paid_order(shop)
    order = await shop.reaches(order["order_no"], "CANCELLED", within=20, refund_required_minor=order["paid_minor"])
    assert order["cancel_reason"] == "merchant did not accept in time"
    order = await shop.refunded(order["order_no"], order["paid_minor"])
    details = await stage_of(temporal, order_workflow_id(order["order_no"]), "CANCELLED")
    assert "SUCCEEDED" in details


async def test_a_declined_or_silent_provider_is_replaced(shop):
    order = await paid_order(shop)
    order_no = order["order_no"]
    assert (await shop.accept(order)).status_code == 200
    first = await shop.offered_provider(order_no)
    assert (await shop.fulfil(order_no, "provider_rejected", first)).status_code == 200
    second = await shop.offered_provider(order_no, other_than=first)
    # the second one never answers; the third is offered after the dispatch timeout
    third = await shop.offered_provider(order_no, other_than=second, within=15)
    assert third not in (first, second)
    stale = await shop.fulfil(order_no, "provider_accepted", second)
    assert "not the one assigned" in refused_with(stale, 409, "WRONG_PROVIDER")["detail"]
    assert (await shop.fulfil(order_no, "provider_accepted", third)).status_code == 200
    order = await shop.reaches(order_no, "IN_SERVICE", provider_id=third)
    events = [e["event"] for e in order["timeline"]]
    assert events[3:] == [
        "dispatch-1",
        "provider-1-declined",
        "dispatch-2",
        "provider-2-timeout",
        "dispatch-3",
        "provider-accepted",
    ]


async def test_dispatch_gives_up_after_the_last_attempt(shop):
    order = await paid_order(shop)
    assert (await shop.accept(order)).status_code == 200
    provider = None
    for _ in range(3):
        provider = await shop.offered_provider(order["order_no"], other_than=provider)
        r = await shop.fulfil(order["order_no"], "provider_rejected", provider)
        assert r.status_code == 200, r.text
    order = await shop.reaches(order["order_no"], "CANCELLED", within=15, refund_required_minor=order["paid_minor"])
    assert "no service provider accepted" in order["cancel_reason"]
    await shop.refunded(order["order_no"], order["paid_minor"])


async def test_a_delivered_order_confirms_itself(shop):
    order_no, provider = await in_service(shop)
    assert (await shop.fulfil(order_no, "delivered", provider)).status_code == 200
    order = await shop.reaches(order_no, "COMPLETED", within=20)
    assert [e["cause"] for e in order["timeline"] if e["event"] == "completed"] == ["auto-confirmed"]


async def test_decisions_in_the_wrong_stage_or_by_the_wrong_party_change_nothing(shop):
    merchant_id = await shop.merchant()
    placed = await shop.placed(merchant_id)
    order_no = placed["order_no"]
    other_merchant = await shop.merchant()
    cases = [
        (shop.accept({"order_no": order_no, "merchant_id": merchant_id}), 409, "not awaiting the merchant"),
        (
            shop.api.post(f"/v1/orders/{order_no}/accept", headers=bearer(shop.merchant_keys[other_merchant])),
            404,
            "not found",
        ),
        (shop.api.post(f"/v1/orders/{order_no}/confirm", headers=shop.as_(Role.SERVICE)), 409, "delivered"),
        (shop.fulfil(order_no, "arrived", "prov-1"), 409, "not expected"),
        (shop.api.post(f"/v1/orders/{order_no}/accept", headers=shop.as_(Role.SERVICE)), 403, "service"),
        (shop.fulfil(order_no, "teleported", "prov-1"), 422, "event"),
        (shop.api.post("/v1/orders/ORDnope/confirm", headers=shop.as_(Role.SERVICE)), 404, "does not exist"),
    ]
    for call, status, says in cases:
        r = await call
        assert r.status_code == status, r.text
        assert says in r.json()["detail"]
    order = await shop.order(order_no)
    assert order["status"] == "AWAITING_PAYMENT" and [e["event"] for e in order["timeline"]] == ["created"]
    r = await shop.api.get(f"/v1/orders/{order_no}", headers=bearer(shop.merchant_keys[other_merchant]))
    refused_with(r, 404, "NOT_FOUND")
    r = await shop.api.get(f"/v1/orders/{order_no}", headers=bearer(shop.merchant_keys[merchant_id]))
    assert r.status_code == 200
