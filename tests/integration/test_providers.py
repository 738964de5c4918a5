"""Service providers through the API: who registers whom, availability, and dispatch (own staff first, then
the pool; only online, idle providers of the order's category; never one that declined; one order each)."""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

from sqlalchemy import select

from db.engine import unit_of_work
from db.models import OrderEvent, ServiceProvider
from domain.access import Role
from tests.support.sandbox_receiver import eventually
from tests.support.shop import Shop, bearer

PHONE = "+86 139 1234 5678"
ID_NO = "110101199003071234"


def category() -> str:
    # A category only this test's providers serve: other tests' providers can never take its orders.
    return f"cat_{uuid.uuid4().hex[:10]}"


async def register(shop: Shop, key: str, **body: Any) -> Any:
    headers = {**bearer(key), "Idempotency-Key": body.pop("idem", None) or uuid.uuid4().hex}
    return await shop.api.post("/v1/providers", json={"name": "Li Wei", **body}, headers=headers)


async def provider(shop: Shop, key: str, cats: list[str], *, online: bool = True, **body: Any) -> str:
    r = await register(shop, key, categories=cats, **body)
    assert r.status_code == 201, r.text
    pid: str = r.json()["provider_id"]
    if online:
        r = await shop.api.post(f"/v1/providers/{pid}/availability", json={"online": True}, headers=bearer(key))
        assert r.status_code == 200 and r.json()["online"] is True, r.text
    return pid


async def accepted_order(shop: Shop, merchant_id: str, cat: str) -> dict[str, Any]:
    """An order of category `cat`, paid and accepted by its merchant: the flow now dispatches it."""
    placed = await shop.placed(merchant_id, items=[_item(cat)])
    assert (await shop.pay(placed["payment"]["pay_url"])).status_code == 200
    order = await shop.reaches(placed["order_no"], "AWAITING_MERCHANT")
    assert (await shop.accept(order)).status_code == 200
    return order


async def offers(shop: Shop, order_no: str) -> list[str]:
    async with unit_of_work(shop.sessions) as session:
        rows = (
            await session.execute(
                select(OrderEvent.details)
                .where(OrderEvent.order_no == order_no, OrderEvent.event.like("dispatch-%"))
                .order_by(OrderEvent.id)  # in the order the offers were made
            )
        ).scalars()
        return [str(d["provider_id"]) for d in rows if d.get("provider_id")]


async def test_a_merchant_registers_its_own_staff_and_the_platform_its_pool(shop):
    merchant_id = await shop.merchant()
    other = await shop.merchant()
    mkey, okey, skey = shop.merchant_keys[merchant_id], shop.merchant_keys[other], shop.keys[Role.SERVICE]
    cat = category()

    idem = uuid.uuid4().hex
    first = await register(shop, mkey, categories=[cat], phone=PHONE, id_no=ID_NO, idem=idem)
    assert first.status_code == 201, first.text
    staff = first.json()
    assert staff["merchant_id"] == merchant_id and staff["categories"] == [cat]
    assert staff["online"] is False and staff["busy"] is False
    assert staff["phone"] == "****5678" and staff["id_no"] == "****1234"
    # The same key is the same provider, whatever happened to the first answer.
    again = await register(shop, mkey, categories=[cat], phone=PHONE, id_no=ID_NO, idem=idem)
    assert again.status_code == 201 and again.json()["provider_id"] == staff["provider_id"]
    async with unit_of_work(shop.sessions) as session:
        row = await session.get(ServiceProvider, staff["provider_id"])
        assert row is not None and row.phone_enc and row.id_no_enc
        assert "5678" not in row.phone_enc and ID_NO not in row.id_no_enc

    pool = await register(shop, skey, categories=[cat])
    assert pool.status_code == 201 and pool.json()["merchant_id"] is None

    refused = [
        (await register(shop, mkey, categories=[cat], merchant_id=other), 403, "FORBIDDEN"),
        (await register(shop, skey, categories=[cat], merchant_id=merchant_id), 422, "INVALID_REQUEST"),
        (await register(shop, shop.keys[Role.FINANCE], categories=[cat]), 403, "FORBIDDEN"),
        (await register(shop, mkey, categories=[]), 422, None),
        (await register(shop, mkey, categories=[cat, cat]), 422, None),
        (await register(shop, mkey, categories=["a:b"]), 422, None),
        (await register(shop, mkey, categories=[cat], phone="call me"), 422, None),
    ]
    for r, status, code in refused:
        assert r.status_code == status, r.text
        if code:
            assert r.json()["code"] == code, r.text

    listed = await shop.api.get("/v1/providers", headers=bearer(mkey))
    assert [p["provider_id"] for p in listed.json()] == [staff["provider_id"]]
    assert (await shop.api.get("/v1/providers", params={"merchant_id": other}, headers=bearer(mkey))).status_code == 404
    pool_view = await shop.api.get("/v1/providers", params={"online": "false"}, headers=bearer(skey))
    assert pool.json()["provider_id"] in [p["provider_id"] for p in pool_view.json()]
    assert all(p["merchant_id"] is None for p in pool_view.json())

    # Availability: a merchant switches its own staff, never another merchant's (as if it did not exist).
    url = f"/v1/providers/{staff['provider_id']}/availability"
    assert (await shop.api.post(url, json={"online": True}, headers=bearer(okey))).status_code == 404
    assert (await shop.api.post(url, json={"online": True}, headers=bearer(skey))).status_code == 404
    on = await shop.api.post(url, json={"online": True}, headers=bearer(mkey))
    assert on.status_code == 200 and on.json()["online"] is True
    online = await shop.api.get("/v1/providers", params={"online": "true"}, headers=bearer(mkey))
    assert [p["provider_id"] for p in online.json()] == [staff["provider_id"]]


async def test_dispatch_offers_own_staff_first_then_the_pool_and_never_one_who_declined(shop):
    merchant_id = await shop.merchant()
    mkey, skey, cat = shop.merchant_keys[merchant_id], shop.keys[Role.SERVICE], category()
    staff = await provider(shop, mkey, [cat])
    pool = await provider(shop, skey, [cat, "home"])
    offline = await provider(shop, mkey, [cat], online=False)
    elsewhere = await provider(shop, skey, [category()])  # online, but serves another category
    other_staff = await provider(shop, shop.merchant_keys[await shop.merchant()], [cat])  # another merchant's

    order = await accepted_order(shop, merchant_id, cat)
    no = order["order_no"]
    assert await shop.offered_provider(no) == staff
    assert (await shop.fulfil(no, "provider_rejected", staff)).status_code == 200
    assert await shop.offered_provider(no, other_than=staff) == pool
    assert (await shop.fulfil(no, "provider_rejected", pool)).status_code == 200
    # Nobody else may take it: the flow gives up after its attempts, cancels and refunds.
    cancelled = await shop.reaches(no, "CANCELLED", within=40)
    assert "no service provider accepted" in cancelled["cancel_reason"]
    await shop.refunded(no, cancelled["paid_minor"], within=30)
    assert await offers(shop, no) == [staff, pool]
    assert not {offline, elsewhere, other_staff} & set(await offers(shop, no))
    # Both are free again for the next order.
    views = (await shop.api.get("/v1/providers", headers=bearer(mkey))).json()
    assert {p["provider_id"]: p["busy"] for p in views}[staff] is False


async def test_a_delivered_order_frees_its_provider_for_the_next(shop):
    merchant_id = await shop.merchant()
    mkey, cat = shop.merchant_keys[merchant_id], category()
    staff = await provider(shop, mkey, [cat])

    first = await accepted_order(shop, merchant_id, cat)
    assert await shop.offered_provider(first["order_no"]) == staff
    assert (await shop.fulfil(first["order_no"], "provider_accepted", staff)).status_code == 200
    busy = {p["provider_id"]: p["busy"] for p in (await shop.api.get("/v1/providers", headers=bearer(mkey))).json()}
    assert busy[staff] is True
    # While the only provider serves the first order, the second waits for one ...
    second = await accepted_order(shop, merchant_id, cat)

    async def no_provider_yet() -> bool:
        async with unit_of_work(shop.sessions) as session:
            e = await session.scalar(
                select(OrderEvent.cause).where(
                    OrderEvent.order_no == second["order_no"], OrderEvent.event == "dispatch-1"
                )
            )
            return e == "no service provider available"

    await eventually(no_provider_yet, 20)
    # ... and is offered to them once the first is delivered.
    assert (await shop.fulfil(first["order_no"], "delivered", staff)).status_code == 200
    assert await shop.offered_provider(second["order_no"], within=30) == staff


async def test_twenty_orders_dispatched_at_once_never_give_a_provider_two(shop):
    merchant_id = await shop.merchant()
    skey, cat = shop.keys[Role.SERVICE], category()
    pool = [await provider(shop, skey, [cat]) for _ in range(5)]
    placed = await asyncio.gather(*(shop.placed(merchant_id, items=[_item(cat)]) for _ in range(20)))
    await asyncio.gather(*(shop.pay(p["payment"]["pay_url"]) for p in placed))
    orders = await asyncio.gather(*(shop.reaches(p["order_no"], "AWAITING_MERCHANT") for p in placed))

    async def take(order: dict[str, Any]) -> str:
        """Accept whatever the order is offered; its end: IN_SERVICE or CANCELLED."""
        assert (await shop.accept(order)).status_code == 200

        async def settled() -> dict[str, Any] | None:
            o = await shop.order(order["order_no"])
            if o["status"] == "DISPATCHING" and o["provider_id"]:
                await shop.fulfil(o["order_no"], "provider_accepted", o["provider_id"])
                return None
            return o if o["status"] in ("IN_SERVICE", "CANCELLED") else None

        end: dict[str, Any] = await eventually(settled, 60)
        return str(end["status"])

    ends = await asyncio.gather(*(take(o) for o in orders))
    assert sorted(ends) == ["CANCELLED"] * 15 + ["IN_SERVICE"] * 5
    serving = [await shop.order(o["order_no"]) for o in orders]
    holders = [o["provider_id"] for o in serving if o["status"] == "IN_SERVICE"]
    assert sorted(holders) == sorted(pool)  # five orders, five different providers
    async with unit_of_work(shop.sessions) as session:
        held = (
            await session.execute(select(ServiceProvider.current_order_no).where(ServiceProvider.id.in_(pool)))
        ).scalars()
        assert sorted(held) == sorted(o["order_no"] for o in serving if o["status"] == "IN_SERVICE")


def _item(cat: str) -> dict[str, Any]:
    return {"sku_id": "sku-x", "name": "Repair", "category_id": cat, "unit_price_minor": 6000, "quantity": 1}
