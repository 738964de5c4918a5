"""Bad order requests get a 4xx that says what is wrong, and create nothing; repeats create one order."""

from __future__ import annotations

import asyncio
import uuid

import pytest
from sqlalchemy import func, select

from db import demo
from db.engine import unit_of_work
from db.models import Order
from domain.access import Role
from tests.support.shop import refused_with

ITEM = {"sku_id": "sku-1", "name": "Haircut", "category_id": "beauty", "unit_price_minor": 5000, "quantity": 1}


async def order_count(shop, *merchant_ids: str) -> int:  # type: ignore[no-untyped-def]
    """Orders of these merchants only: other tests' flows place and cancel orders meanwhile."""
    async with unit_of_work(shop.sessions) as session:
        q = select(func.count()).select_from(Order).where(Order.merchant_id.in_(merchant_ids))
        return int((await session.execute(q)).scalar_one())


@pytest.mark.parametrize(
    ("overrides", "says"),
    [
        ({"items": []}, "items"),
        ({"items": [{**ITEM, "quantity": 0}]}, "quantity"),
        ({"items": [{**ITEM, "quantity": -2}]}, "quantity"),
        ({"items": [{**ITEM, "unit_price_minor": 0}]}, "unit_price_minor"),
        ({"items": [{**ITEM, "unit_price_minor": -100}]}, "unit_price_minor"),
        ({"items": [{**ITEM, "unit_price_minor": 1.5}]}, "unit_price_minor"),
        (
            {
                "items": [
                    {**ITEM, "unit_price_minor": 99_000_000, "quantity": 9_999},
                    {**ITEM, "sku_id": "sku-2", "unit_price_minor": 99_000_000, "quantity": 9_999},
                ]
            },
            "exceeds",
        ),
        ({"items": [{**ITEM, "unit_price_minor": 10**30}]}, "unit_price_minor"),
        ({"currency": "XYZ"}, "currency"),
        ({"discount_minor": 10_000}, "discount"),
        ({"discount_minor": 0}, "computed by the server"),
        ({"discount_minor": -1}, "discount_minor"),
        ({"items": [ITEM, ITEM]}, "once"),
        ({"customer_id": ""}, "customer_id"),
        ({"channel": "paypal"}, "not enabled"),
    ],
)
async def test_bad_order_input_is_a_4xx_with_a_reason_and_creates_nothing(shop, overrides, says):
    merchant_id = await shop.merchant()
    r = await shop.place(merchant_id, **{"items": [ITEM], "delivery_fee_minor": 0, **overrides})
    # Every one is the request's own fault (422); an unknown channel and a client's discount have codes of their own.
    own = {"not enabled": "UNKNOWN_CHANNEL", "computed by the server": "DISCOUNT_NOT_ACCEPTED"}
    code = own.get(says, "INVALID_REQUEST")
    assert (r.status_code, r.json()["code"]) == (422, code), r.text
    assert r.headers["content-type"].startswith("application/problem+json")
    assert says in r.json()["detail"]
    assert await order_count(shop, merchant_id) == 0


async def test_unknown_inactive_or_wrong_currency_merchants_are_refused(shop):
    async with unit_of_work(shop.sessions) as session:
        suspended = await demo.create_active_merchant(session, status="SUSPENDED")
    active = await shop.merchant()
    cases = [
        ("m-nobody", {}, 404, "MERCHANT_NOT_FOUND", "does not exist"),
        (suspended, {}, 409, "MERCHANT_NOT_ACTIVE", "not ACTIVE"),
        (active, {"currency": "USD"}, 422, "WRONG_CURRENCY", "takes CNY"),
    ]
    for merchant_id, extra, status, code, says in cases:
        r = await shop.place(merchant_id, **extra)
        assert says in refused_with(r, status, code)["detail"]
    assert await order_count(shop, "m-nobody", suspended, active) == 0


async def test_out_of_stock_is_409_and_reserves_nothing(shop):
    merchant_id = await shop.merchant()
    sku = f"sku-{uuid.uuid4().hex[:8]}"
    await shop.stock(merchant_id, sku, 1)
    r = await shop.place(merchant_id, items=[{**ITEM, "sku_id": sku, "quantity": 2}])
    assert "not enough stock" in refused_with(r, 409, "OUT_OF_STOCK")["detail"]
    assert await shop.available(merchant_id, sku) == 1


async def test_the_last_unit_goes_to_exactly_one_of_two_racing_orders(shop):
    merchant_id = await shop.merchant()
    sku = f"sku-{uuid.uuid4().hex[:8]}"
    await shop.stock(merchant_id, sku, 1)
    results = await asyncio.gather(*(shop.place(merchant_id, items=[{**ITEM, "sku_id": sku}]) for _ in range(2)))
    assert sorted(r.status_code for r in results) == [201, 409]
    assert await shop.available(merchant_id, sku) == 0


async def test_the_same_idempotency_key_places_one_order(shop):
    merchant_id = await shop.merchant()
    key = uuid.uuid4().hex
    first = await shop.place(merchant_id, key=key)
    second = await shop.place(merchant_id, key=key)
    assert first.status_code == second.status_code == 201
    assert first.json() == second.json()
    assert await order_count(shop, merchant_id) == 1
    different = await shop.place(merchant_id, key=key, delivery_fee_minor=0)
    assert "different request" in refused_with(different, 422, "IDEMPOTENCY_KEY_REUSED")["detail"]


async def test_only_the_platform_service_places_orders(shop):
    merchant_id = await shop.merchant()
    r = await shop.api.post("/v1/orders", json={}, headers={**shop.as_(Role.FINANCE), "Idempotency-Key": "k"})
    refused_with(r, 403, "FORBIDDEN")
    # The service's key passes the role check: what it lacks is the key every creating request needs.
    r = await shop.api.post("/v1/orders", json={"merchant_id": merchant_id}, headers=shop.as_(Role.SERVICE))
    refused_with(r, 400, "IDEMPOTENCY_KEY_REQUIRED")
