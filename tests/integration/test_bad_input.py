"""Bad input the API used to answer 500: each is a 4xx that names what is wrong, and changes nothing."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

import pytest
from sqlalchemy import func, select
from temporalio.service import RPCError, RPCStatusCode

from db.engine import unit_of_work
from db.models import CommissionRule, InboundNotification, Order
from domain.access import Role
from domain.settlement import cycle_id_for
from tests.support.shop import bearer, refused_with
from workflows.ids import settlement_workflow_id

HUGE = "99999999999999999999"  # beyond bigint: was "bigint out of range" from the database


def assert_refused(r, status: int, names: str) -> None:  # type: ignore[no-untyped-def]
    assert r.status_code == status, r.text
    assert r.headers["content-type"].startswith("application/problem+json")
    assert names in r.json()["detail"], r.json()


async def test_a_naive_settlement_cutoff_is_422_and_starts_no_cycle(shop, temporal):
    naive = "2026-11-01T00:00:07"
    r = await shop.api.post("/v1/settlement-runs", json={"cutoff": naive}, headers=shop.as_(Role.FINANCE))
    assert_refused(r, 422, "cutoff")
    cycle = cycle_id_for(datetime.fromisoformat(naive).replace(tzinfo=UTC))
    with pytest.raises(RPCError) as missing:
        await temporal.get_workflow_handle(settlement_workflow_id(cycle)).describe()
    assert missing.value.status is RPCStatusCode.NOT_FOUND
    refused_with(
        await shop.api.get(f"/v1/settlement-runs/{cycle}", headers=shop.as_(Role.FINANCE)), 404, "CYCLE_NOT_FOUND"
    )


@pytest.mark.parametrize("statement_id", [HUGE, "0", "-1"])
async def test_an_out_of_range_statement_id_is_422(shop, statement_id):
    finance = shop.as_(Role.FINANCE)
    assert_refused(await shop.api.get(f"/v1/settlements/{statement_id}", headers=finance), 422, "statement_id")
    r = await shop.api.post(f"/v1/settlements/{statement_id}/approve", json={}, headers=finance)
    assert_refused(r, 422, "statement_id")


async def rule_count(shop) -> int:  # type: ignore[no-untyped-def]
    async with unit_of_work(shop.sessions) as session:
        return int((await session.execute(select(func.count()).select_from(CommissionRule))).scalar_one())


@pytest.mark.parametrize(
    ("window", "names"),
    [
        ({"valid_from": "2026-01-01T00:00:00"}, "valid_from"),
        ({"valid_from": "2026-01-01T00:00:00+00:00", "valid_to": "2027-01-01T00:00:00"}, "valid_to"),
        ({"valid_from": "2026-01-01T00:00:00", "valid_to": "2027-01-01T00:00:00+08:00"}, "valid_from"),
    ],
)
async def test_naive_or_mixed_commission_rule_windows_are_422_and_store_nothing(shop, window, names):
    before = await rule_count(shop)
    body = {"scope": "merchant", "scope_value": "m-nobody", "rate_bps": 100, **window}
    r = await shop.api.post(
        "/v1/commission-rules", json=body, headers={**shop.as_(Role.FINANCE), "Idempotency-Key": uuid.uuid4().hex}
    )
    assert_refused(r, 422, names)
    assert await rule_count(shop) == before


async def orders_of(shop, customer_id: str) -> int:  # type: ignore[no-untyped-def]
    async with unit_of_work(shop.sessions) as session:
        query = select(func.count()).select_from(Order).where(Order.customer_id == customer_id)
        return int((await session.execute(query)).scalar_one())


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("promoter_id", "promo:42 推广"),
        ("customer_id", "c:1"),
        ("channel", "we chat"),
        ("campaign_id", "camp/1"),
        ("currency", "cny"),
        ("sku_id", "sku:1"),
        ("category_id", "home:x"),
    ],
)
async def test_an_id_that_would_break_an_account_code_is_422_naming_the_field(shop, field, value):
    merchant_id = await shop.merchant()
    customer = f"c-{uuid.uuid4().hex[:12]}"
    overrides: dict[str, object] = {"customer_id": customer}
    if field in ("sku_id", "category_id"):
        item = {"sku_id": "sku-1", "name": "Haircut", "category_id": "beauty", "unit_price_minor": 5000, "quantity": 1}
        overrides["items"] = [{**item, field: value}]
    else:
        overrides[field] = value
    r = await shop.place(merchant_id, **overrides)
    assert_refused(r, 422, field)
    assert await orders_of(shop, customer) == 0 and await orders_of(shop, value) == 0


async def notifications(shop) -> int:  # type: ignore[no-untyped-def]
    async with unit_of_work(shop.sessions) as session:
        return int((await session.execute(select(func.count()).select_from(InboundNotification))).scalar_one())


async def test_an_oversized_callback_is_413_before_its_signature_is_looked_at(shop):
    before = await notifications(shop)
    big = b'{"event_id": "e-1", "event_type": "payment", "pad": "' + b"x" * 70_000 + b'"}'
    # Unsigned: a 401 would mean the signature was checked (and the whole body hashed) first.
    r = await shop.api.post("/v1/callbacks/wechat", content=big, headers={"content-type": "application/json"})
    assert_refused(r, 413, "larger than")

    async def chunks():  # type: ignore[no-untyped-def]
        for _ in range(10):
            yield b"x" * 10_000

    chunked = await shop.api.post("/v1/callbacks/wechat", content=chunks())  # no Content-Length
    assert_refused(chunked, 413, "larger than")
    small = await shop.api.post("/v1/callbacks/wechat", content=b"{}")
    refused_with(small, 401, "SIGNATURE_INVALID")  # a small body still goes to the signature check
    assert await notifications(shop) == before


async def test_another_merchants_resources_are_404_not_403(shop):
    mine, theirs = await shop.merchant(), await shop.merchant()
    order_no = (await shop.placed(theirs))["order_no"]
    as_mine = bearer(shop.merchant_keys[mine])
    for path in (f"/v1/merchants/{theirs}", f"/v1/merchants/{theirs}/balance", f"/v1/orders/{order_no}"):
        assert_refused(await shop.api.get(path, headers=as_mine), 404, "not found")
    r = await shop.api.post(
        f"/v1/merchants/{theirs}/withdrawals",
        json={"amount_minor": 1_000},
        headers={**as_mine, "Idempotency-Key": uuid.uuid4().hex},
    )
    assert_refused(r, 404, "not found")
    assert (await shop.api.get(f"/v1/merchants/{mine}/balance", headers=as_mine)).status_code == 200
