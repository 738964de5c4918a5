"""Ids in paths are checked where they enter, and text PostgreSQL cannot store (NUL, lone surrogates) is
refused wherever it sits in a request: each is a 422 naming the field, and nothing is written."""

from __future__ import annotations

import uuid
from typing import Any

import pytest
from sqlalchemy import func, select

from db.engine import unit_of_work
from db.models import (
    ApiKey,
    CommissionRule,
    IdempotencyRecord,
    MerchantApplication,
    MerchantCategory,
    Order,
    Withdrawal,
)
from domain.access import Role
from tests.integration.test_bad_input import assert_refused

# Tables only a request writes (no flow of an earlier test can change them meanwhile).
REQUEST_WRITTEN = (ApiKey, CommissionRule, IdempotencyRecord, MerchantApplication, MerchantCategory, Order, Withdrawal)
CATEGORY = {"name": "Odd", "risk_level": "low", "deposit_minor": 0, "currency": "CNY"}
BAD_IDS = {"nul": "a%00b", "too long": "x" * 65, "colon": "a:b"}


async def counts(shop: Any) -> dict[str, int]:
    async with unit_of_work(shop.sessions) as session:
        return {
            table.__tablename__: int((await session.execute(select(func.count()).select_from(table))).scalar_one())
            for table in REQUEST_WRITTEN
        }


@pytest.mark.parametrize(
    ("method", "path", "role", "field", "body"),
    [
        ("GET", "/v1/orders/{}", Role.SERVICE, "order_no", None),
        ("POST", "/v1/orders/{}/cancel", Role.SERVICE, "order_no", {"reason": "changed my mind"}),
        ("POST", "/v1/orders/{}/refunds", Role.SERVICE, "order_no", {"amount_minor": 100, "reason": "broken"}),
        ("GET", "/v1/refunds/{}", Role.FINANCE, "refund_no", None),
        ("POST", "/v1/refunds/{}/manual-transfer/approve", Role.FINANCE, "refund_no", {}),
        ("GET", "/v1/withdrawals/{}", Role.FINANCE, "withdrawal_id", None),
        ("POST", "/v1/withdrawals/{}/reject", Role.FINANCE, "withdrawal_id", {"reason": "no"}),
        ("GET", "/v1/merchants/{}", Role.SERVICE, "merchant_id", None),
        ("GET", "/v1/merchants/{}/balance", Role.FINANCE, "merchant_id", None),
        ("POST", "/v1/merchants/{}/review", Role.AUDITOR, "merchant_id", {"decision": "approve", "reason": "ok"}),
        ("POST", "/v1/merchants/{}/withdrawals", Role.MERCHANT, "merchant_id", {"amount_minor": 1000}),
        ("GET", "/v1/settlement-runs/{}", Role.FINANCE, "cycle_id", None),
        ("POST", "/v1/commission-rules/{}/disable", Role.FINANCE, "rule_id", None),
        ("PUT", "/v1/merchant-categories/{}", Role.ADMIN, "code", {**CATEGORY, "code": "odd"}),
    ],
)
@pytest.mark.parametrize("bad", BAD_IDS.values(), ids=BAD_IDS.keys())
async def test_an_odd_id_in_a_path_is_422_naming_it_and_writes_nothing(shop, method, path, role, field, body, bad):
    before = await counts(shop)
    key = uuid.uuid4().hex
    headers = {**shop.as_(role), "Idempotency-Key": key}
    r = await shop.api.request(method, path.format(bad), json=body, headers=headers)
    assert_refused(r, 422, field)
    assert await counts(shop) == before


@pytest.mark.parametrize(
    ("path", "role", "raw", "names"),
    [
        ("/v1/api-keys", Role.ADMIN, rb'{"role": "operator", "person": "p", "name": "a\u0000b"}', "body.name"),
        (
            "/v1/commission-rules",
            Role.FINANCE,
            rb'{"scope": "merchant", "scope_value": "m-\ud800", "rate_bps": 100}',
            "body.scope_value",
        ),
        ("/v1/merchant-categories/odd", Role.ADMIN, rb'{"code": "odd", "name": "\u0000"}', "body.name"),
        ("/v1/settlement-runs", Role.FINANCE, rb'{"cutoff": null, "\u0000": 1}', "body (a key)"),
    ],
)
async def test_unstorable_text_in_a_body_is_422_naming_its_place_and_writes_nothing(shop, path, role, raw, names):
    before = await counts(shop)
    headers = {**shop.as_(role), "Idempotency-Key": uuid.uuid4().hex, "content-type": "application/json"}
    method = "PUT" if "categories" in path else "POST"
    r = await shop.api.request(method, path, content=raw, headers=headers)
    assert_refused(r, 422, names)
    assert r.json()["code"] == "UNSTORABLE_TEXT"
    assert await counts(shop) == before


@pytest.mark.parametrize("reason", [r"\u0000", r"\udc00", r"late \ud83d"])
async def test_a_cancel_reason_with_unstorable_text_leaves_the_order_as_it_was(shop, reason):
    order = await shop.placed(await shop.merchant())
    before = await shop.order(order["order_no"])
    raw = ('{"reason": "' + reason + '"}').encode()
    headers = {**shop.as_(Role.SERVICE), "content-type": "application/json"}
    r = await shop.api.post(f"/v1/orders/{order['order_no']}/cancel", content=raw, headers=headers)
    assert_refused(r, 422, "body.reason")
    after = await shop.order(order["order_no"])
    assert after["status"] == "AWAITING_PAYMENT" and after["cancel_reason"] is None
    assert after["timeline"] == before["timeline"]


@pytest.mark.parametrize(
    ("path", "role", "names"),
    [
        # A NUL that reached PostgreSQL in a WHERE clause was a 500 (psycopg refuses to send it).
        ("/v1/callbacks/refused?subject_ref=a%00b", Role.OPERATOR, "query.subject_ref"),
        ("/v1/withdrawals?merchant_id=m%00", Role.FINANCE, "merchant_id"),
        ("/v1/settlements?cycle_id=C%00", Role.FINANCE, "cycle_id"),
        ("/v1/commission-rules?x%00=1", Role.FINANCE, "query (a name)"),
    ],
)
async def test_a_nul_in_a_query_string_is_422_naming_the_parameter(shop, path, role, names):
    assert_refused(await shop.api.get(path, headers=shop.as_(role)), 422, names)


async def test_a_withdrawal_status_filter_outside_the_vocabulary_is_422(shop):
    r = await shop.api.get("/v1/withdrawals", params={"status": "paid"}, headers=shop.as_(Role.FINANCE))
    assert_refused(r, 422, "status")
