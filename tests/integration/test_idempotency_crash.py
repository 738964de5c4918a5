"""The API process killed in the middle of a create, then the client retrying with the same key: the
retry waits out the dead request's lease and answers with the object that request had started."""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

import httpx
from sqlalchemy import select

from db.engine import unit_of_work
from db.models import IdempotencyRecord, Refund
from tests.integration.test_idempotency import orders_of
from tests.integration.test_refunds import delivered_order
from tests.support.sandbox_receiver import eventually
from tests.support.shop import Shop
from workflows.ids import order_workflow_id


async def claim_of(shop: Shop, key: str) -> IdempotencyRecord | None:
    async with unit_of_work(shop.sessions) as session:
        q = select(IdempotencyRecord).where(IdempotencyRecord.key == key)
        return (await session.execute(q)).scalar_one_or_none()


async def test_an_api_killed_mid_request_then_retried_with_the_same_key_gives_the_same_order(shop, temporal):
    merchant_id = await shop.merchant()
    customer, key = f"c-{uuid.uuid4().hex[:12]}", uuid.uuid4().hex
    services = shop.services
    # Without a worker the order flow cannot answer: the request is held at the moment that matters,
    # after the key was claimed and the flow started, before any answer was stored.
    services.children["worker"].kill()
    try:
        in_flight = asyncio.create_task(shop.place(merchant_id, key=key, customer_id=customer))

        async def started() -> IdempotencyRecord | None:
            claim = await claim_of(shop, key)
            if claim is None or not claim.number:
                return None
            try:
                await temporal.get_workflow_handle(order_workflow_id(f"ORD{claim.number}")).describe()
            except Exception:
                return None
            return claim

        claim = await eventually(started, 10)
        services.children["api"].kill()
        try:
            await in_flight
            raise AssertionError("the request of a killed API answered")
        except httpx.HTTPError:
            pass
    finally:
        services.start("worker")
        api = services.start("api")
    await asyncio.to_thread(api.wait_http, f"{services.api_url}/health")
    assert claim.response_status is None  # the dead request left its claim unfinished

    async def retried() -> dict[str, Any] | None:
        r = await shop.place(merchant_id, key=key, customer_id=customer)
        if r.status_code == 409 and r.json()["code"] == "IDEMPOTENCY_IN_PROGRESS":
            await asyncio.sleep(0.5)  # still leased to the dead request (15 s in the test stack): ask less often
            return None
        assert r.status_code == 201, r.text
        body: dict[str, Any] = r.json()
        return body

    order = await eventually(retried, 40)
    assert order["order_no"] == f"ORD{claim.number}"
    assert await orders_of(shop, customer) == [order["order_no"]]
    # One order, created once (its payment deadline may have passed while the lease ran out).
    placed = await shop.order(order["order_no"])
    events = [e["event"] for e in placed["timeline"]]
    assert events[:1] == ["created"] and events.count("created") == 1, events
    assert placed["payments"][0]["payment_no"] == order["payment"]["payment_no"]
    again = await shop.place(merchant_id, key=key, customer_id=customer)
    assert again.status_code == 201 and again.json() == order and again.headers["Idempotent-Replayed"] == "true"


async def test_the_same_refund_key_sent_in_parallel_creates_one_refund(shop):
    order = await delivered_order(shop)
    key = uuid.uuid4().hex
    answers = await asyncio.gather(*(shop.request_refund(order["order_no"], 700, key=key) for _ in range(4)))
    assert {a.status_code for a in answers} <= {202, 409} and 202 in {a.status_code for a in answers}, [
        a.text for a in answers
    ]
    assert all(a.json()["code"] == "IDEMPOTENCY_IN_PROGRESS" for a in answers if a.status_code == 409)
    numbers = {a.json()["refund_no"] for a in answers if a.status_code == 202}
    assert len(numbers) == 1
    await shop.refunded(order["order_no"], 700)
    async with unit_of_work(shop.sessions) as session:
        refunds = (await session.execute(select(Refund.refund_no).where(Refund.order_no == order["order_no"]))).all()
    assert [r for (r,) in refunds] == list(numbers)
