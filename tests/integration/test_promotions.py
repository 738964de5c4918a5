"""Promotions through the API: campaigns, coupons, eligibility refusals, budget under concurrency,
reservation released on cancel and on unpaid expiry, the platform subsidy at capture and in settlement.
The ledger invariants (conftest) are checked after every test, with the subsidy term in the escrow check."""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import select

from db.engine import unit_of_work
from db.models import SettlementLine
from domain.access import Role
from domain.accounts import MARKETING
from tests.integration.test_refunds import moves, refund_reaches, settled_order
from tests.integration.test_settlement import cycle_reaches, run_cycle
from tests.support.sandbox_receiver import eventually

ITEM = {"sku_id": "sku-clean-2h", "name": "Home cleaning, 2h", "category_id": "home", "unit_price_minor": 8800}


NOW = datetime.now(UTC)  # one instant, so the same key sends the same body


def terms(**kw: Any) -> dict[str, Any]:
    now = NOW
    body: dict[str, Any] = {
        "name": "winter",
        "kind": "full_reduction",
        "threshold_minor": 5000,
        "amount_minor": 1000,
        "funded_by": "platform",
        "budget_minor": 100_000,
        "valid_from": (now - timedelta(hours=1)).isoformat(),
        "valid_to": (now + timedelta(days=1)).isoformat(),
        "per_customer_limit": 1,
    }
    body.update(kw)
    return body


async def campaign(shop, key: str | None = None, **kw: Any) -> dict[str, Any]:  # type: ignore[no-untyped-def]
    headers = {**shop.as_(Role.FINANCE), "Idempotency-Key": key or uuid.uuid4().hex}
    r = await shop.api.post("/v1/campaigns", json=terms(**kw), headers=headers)
    assert r.status_code == 201, r.text
    body: dict[str, Any] = r.json()
    return body


async def coupon(shop, campaign_id: str, customer_id: str = "c-1") -> str:  # type: ignore[no-untyped-def]
    headers = {**shop.as_(Role.SERVICE), "Idempotency-Key": uuid.uuid4().hex}
    r = await shop.api.post(f"/v1/campaigns/{campaign_id}/coupons", json={"customer_id": customer_id}, headers=headers)
    assert r.status_code == 201, r.text
    assert r.json()["status"] == "ISSUED"
    coupon_id: str = r.json()["coupon_id"]
    return coupon_id


async def spent(shop, campaign_id: str) -> int:  # type: ignore[no-untyped-def]
    r = await shop.api.get(f"/v1/campaigns/{campaign_id}", headers=shop.as_(Role.OPERATOR))
    assert r.status_code == 200, r.text
    assert r.json()["remaining_minor"] == r.json()["budget_minor"] - r.json()["spent_minor"]
    value: int = r.json()["spent_minor"]
    return value


def refused(r, status: int, code: str) -> None:  # type: ignore[no-untyped-def]
    assert r.status_code == status, r.text
    assert r.json()["code"] == code, r.text
    assert r.headers["content-type"].startswith("application/problem+json")


async def test_campaign_is_created_once_per_key_and_shows_budget_and_spent(shop):
    key = uuid.uuid4().hex
    first = await campaign(shop, key=key, budget_minor=5000)
    again = await campaign(shop, key=key, budget_minor=5000)
    assert first["id"] == again["id"] and first["id"].startswith("cmp-")
    assert (first["budget_minor"], first["spent_minor"], first["remaining_minor"]) == (5000, 0, 5000)
    r = await shop.api.get("/v1/campaigns/cmp-none", headers=shop.as_(Role.FINANCE))
    refused(r, 404, "CAMPAIGN_NOT_FOUND")
    r = await shop.api.post(
        "/v1/campaigns", json=terms(), headers={**shop.as_(Role.SERVICE), "Idempotency-Key": uuid.uuid4().hex}
    )
    assert r.status_code == 403
    r = await shop.api.post(
        "/v1/campaigns",
        json=terms(funded_by="shared"),
        headers={**shop.as_(Role.OPERATOR), "Idempotency-Key": uuid.uuid4().hex},
    )
    assert r.status_code == 422 and "platform_share_bps" in r.json()["detail"]
    r = await shop.api.post(
        f"/v1/campaigns/{first['id']}/coupons",
        json={"customer_id": "c-1"},
        headers={**shop.as_(Role.FINANCE), "Idempotency-Key": uuid.uuid4().hex},
    )
    assert r.status_code == 403


async def test_each_refusal_reason_is_exact_and_places_nothing(shop):
    merchant_id = await shop.merchant()
    k = (await campaign(shop))["id"]
    refused(await shop.place(merchant_id, discount_minor=100), 422, "DISCOUNT_NOT_ACCEPTED")
    refused(await shop.place(merchant_id, coupon_ids=["CPNNOPE"]), 404, "COUPON_NOT_FOUND")
    refused(await shop.place(merchant_id, coupon_ids=[await coupon(shop, k, "c-2")]), 422, "COUPON_NOT_YOURS")
    future = (await campaign(shop, valid_from=(datetime.now(UTC) + timedelta(hours=1)).isoformat()))["id"]
    refused(await shop.place(merchant_id, coupon_ids=[await coupon(shop, future)]), 422, "CAMPAIGN_NOT_ACTIVE")
    other = (await campaign(shop, merchant_ids=["m-other"]))["id"]
    refused(await shop.place(merchant_id, coupon_ids=[await coupon(shop, other)]), 422, "COUPON_NOT_APPLICABLE")
    high = (await campaign(shop, threshold_minor=8801))["id"]
    refused(await shop.place(merchant_id, coupon_ids=[await coupon(shop, high)]), 422, "BELOW_THRESHOLD")
    two = [await coupon(shop, k), await coupon(shop, k)]
    refused(await shop.place(merchant_id, coupon_ids=two), 422, "COUPON_NOT_STACKABLE")
    poor = (await campaign(shop, budget_minor=999))["id"]
    refused(await shop.place(merchant_id, coupon_ids=[await coupon(shop, poor)]), 409, "BUDGET_EXHAUSTED")
    # a coupon used once; a second of the same campaign is over the customer's limit
    placed = await shop.placed(merchant_id, coupon_ids=[two[0]])
    assert placed["payable_minor"] == 8800 + 200 - 1000
    refused(await shop.place(merchant_id, coupon_ids=[two[0]]), 409, "COUPON_ALREADY_USED")
    refused(await shop.place(merchant_id, coupon_ids=[two[1]]), 409, "CUSTOMER_LIMIT_REACHED")
    for c in (future, other, high, poor):
        assert await spent(shop, c) == 0
    assert await spent(shop, k) == 1000


async def test_concurrent_orders_never_overspend_a_budget_and_a_coupon_is_used_once(shop):
    merchant_id = await shop.merchant()
    k = (await campaign(shop, budget_minor=5 * 1000))["id"]
    coupons = [await coupon(shop, k, f"race-{i}") for i in range(20)]
    answers = await asyncio.gather(
        *(shop.place(merchant_id, customer_id=f"race-{i}", coupon_ids=[c]) for i, c in enumerate(coupons))
    )
    placed = [r for r in answers if r.status_code == 201]
    assert len(placed) == 5, [r.text for r in answers]
    for r in answers:
        if r.status_code != 201:
            refused(r, 409, "BUDGET_EXHAUSTED")
    assert all(r.json()["payable_minor"] == 8000 for r in placed)
    assert await spent(shop, k) == 5000
    # one coupon named by two orders at once: one reserves it, the other is refused
    k2 = (await campaign(shop))["id"]
    one = await coupon(shop, k2, "twice")
    both = await asyncio.gather(*(shop.place(merchant_id, customer_id="twice", coupon_ids=[one]) for _ in range(2)))
    assert sorted(r.status_code for r in both) == [201, 409], [r.text for r in both]
    refused(next(r for r in both if r.status_code == 409), 409, "COUPON_ALREADY_USED")
    assert await spent(shop, k2) == 1000


async def test_cancel_and_unpaid_expiry_release_the_coupon_and_the_budget(shop):
    merchant_id = await shop.merchant()
    k = (await campaign(shop, budget_minor=1000))["id"]
    c = await coupon(shop, k)
    placed = await shop.placed(merchant_id, coupon_ids=[c])
    order = await shop.order(placed["order_no"])
    assert order["discount_minor"] == 1000 and order["coupons"][0]["status"] == "RESERVED"
    assert [i["discount_minor"] for i in order["items"]] == [1000]
    assert await spent(shop, k) == 1000
    r = await shop.api.post(
        f"/v1/orders/{placed['order_no']}/cancel", json={"reason": "changed my mind"}, headers=shop.as_(Role.SERVICE)
    )
    assert r.status_code == 200, r.text
    order = await shop.reaches(placed["order_no"], "CANCELLED")
    assert order["coupons"][0]["status"] == "RELEASED"
    assert await spent(shop, k) == 0
    # usable again; this time the order expires unpaid (the test stack's payment timeout is 8 s)
    again = await shop.placed(merchant_id, coupon_ids=[c])
    assert await spent(shop, k) == 1000
    order = await shop.reaches(again["order_no"], "CANCELLED", within=40)
    assert order["coupons"][0]["status"] == "RELEASED" and order["paid_minor"] == 0
    assert await spent(shop, k) == 0


async def test_the_platform_subsidy_moves_into_escrow_at_capture_and_settles_as_gross(shop):
    merchant_id = await shop.merchant()
    # shared: 60% of the 1000 off is the platform's (subsidy 600), 400 the merchant's
    k = (await campaign(shop, funded_by="shared", platform_share_bps=6000))["id"]
    marketing_before = await shop.balance(MARKETING)
    order = await shop.delivered(merchant_id, coupon_ids=[await coupon(shop, k)], items=[{**ITEM, "quantity": 1}])
    assert (order["paid_minor"], order["discount_minor"], order["subsidy_minor"]) == (8000, 1000, 600)
    assert order["coupons"][0]["status"] == "CONSUMED"
    assert await shop.ledger_entries(order["order_no"], "PROMOTION_SUBSIDY") == 1
    assert await shop.balance(MARKETING) - marketing_before == 600
    assert await spent(shop, k) == 1000
    r = await shop.api.post(f"/v1/orders/{order['order_no']}/confirm", headers=shop.as_(Role.SERVICE))
    assert r.status_code == 200, r.text
    await shop.reaches(order["order_no"], "COMPLETED", within=20, settleable=True)
    cycle = await run_cycle(shop)
    await cycle_reaches(shop, cycle["cycle_id"], "CLOSED")
    await shop.reaches(order["order_no"], "COMPLETED", settled=True)

    async def line() -> SettlementLine | None:
        async with unit_of_work(shop.sessions) as session:
            query = select(SettlementLine).where(SettlementLine.order_no == order["order_no"])
            return (await session.execute(query)).scalar_one_or_none()

    settled = await eventually(line, 10)
    # the merchant's gross: 9000 undiscounted less only its own 400
    assert settled.gross_minor == 8000 + 600 == 9000 - 400
    assert settled.subsidy_minor == 600  # shown per line on the merchant's statement
    assert settled.commission_minor + settled.net_minor + settled.promoter_minor == 8600


async def test_refunds_reverse_the_matching_share_of_the_subsidy_and_a_full_refund_restores_the_coupon(shop):
    merchant_id = await shop.merchant()
    k = (await campaign(shop, budget_minor=1000))["id"]
    c = await coupon(shop, k)
    marketing_before = await shop.balance(MARKETING)
    order = await shop.delivered(merchant_id, coupon_ids=[c])
    order_no = order["order_no"]
    assert (order["paid_minor"], order["subsidy_minor"]) == (8000, 1000)
    r = await shop.request_refund(order_no, 3000)
    assert r.status_code == 202, r.text
    await shop.refunded(order_no, 3000)
    # 3000 of the 8000 paid back: 3/8 of the 1000 subsidy goes back to marketing
    assert await shop.ledger_entries(order_no, "PROMOTION_SUBSIDY_REVERSED") == 1
    assert await shop.balance(MARKETING) - marketing_before == 1000 - 375
    assert (await shop.order(order_no))["coupons"][0]["status"] == "CONSUMED"
    r = await shop.request_refund(order_no, 5000)
    assert r.status_code == 202, r.text
    refunded = await shop.refunded(order_no, 8000)
    assert await shop.balance(MARKETING) == marketing_before  # every cent of the subsidy came back
    assert refunded["coupons"][0]["status"] == "RELEASED"
    assert await spent(shop, k) == 0
    again = await shop.placed(merchant_id, coupon_ids=[c])  # the coupon is usable again
    assert again["payable_minor"] == 8000


async def test_an_item_refund_returns_what_the_customer_paid_for_it(shop):
    merchant_id = await shop.merchant()
    k = (await campaign(shop, amount_minor=900))["id"]
    items = [
        {**ITEM, "sku_id": "sku-a", "unit_price_minor": 4000, "quantity": 2},
        {**ITEM, "sku_id": "sku-b", "unit_price_minor": 1000, "quantity": 1},
    ]
    marketing_before = await shop.balance(MARKETING)
    order = await shop.delivered(merchant_id, coupon_ids=[await coupon(shop, k)], items=items)
    # 900 off over 8000 and 1000 by largest remainder; paid 9000 - 900 + 200 delivery
    assert [i["discount_minor"] for i in order["items"]] == [800, 100]
    assert order["paid_minor"] == 8300
    headers = {**shop.as_(Role.SERVICE), "Idempotency-Key": uuid.uuid4().hex}
    body = {"sku_id": "sku-a", "quantity": 1, "reason": "one was broken"}
    r = await shop.api.post(f"/v1/orders/{order['order_no']}/refunds", json=body, headers=headers)
    assert r.status_code == 202, r.text
    await shop.refunded(order["order_no"], (8000 - 800) // 2)
    # that unit's share of its line's subsidy (800 / 2) went back to marketing, not a pro-rata 390
    assert await shop.balance(MARKETING) - marketing_before == 900 - 400
    headers["Idempotency-Key"] = uuid.uuid4().hex
    r = await shop.api.post(f"/v1/orders/{order['order_no']}/refunds", json={**body, "quantity": 3}, headers=headers)
    refused(r, 422, "REFUND_EXCEEDS_REFUNDABLE")
    r = await shop.api.post(
        f"/v1/orders/{order['order_no']}/refunds", json={**body, "amount_minor": 5}, headers=headers
    )
    assert r.status_code == 422 and "not both" in r.json()["detail"]


# ---- refunds after settlement: the subsidy comes back from those it was settled to ----------------


async def settled_with_coupon(shop, k: str, promoter: str, items: list[dict[str, Any]]) -> dict[str, Any]:  # type: ignore[no-untyped-def]
    """An order with a coupon of campaign `k` and a promoter, under a 10% merchant rule, settled."""
    order: dict[str, Any] = await settled_order(
        shop, promoter_id=promoter, rate_bps=1000, coupon_ids=[await coupon(shop, k)], items=items
    )
    assert order["coupons"][0]["status"] == "CONSUMED"
    return order


async def test_an_item_refund_after_settlement_takes_back_that_items_subsidy_from_those_it_was_settled_to(shop):
    k = (await campaign(shop, amount_minor=900))["id"]
    items = [
        {**ITEM, "sku_id": "sku-a", "unit_price_minor": 4000, "quantity": 2},
        {**ITEM, "sku_id": "sku-b", "unit_price_minor": 1000, "quantity": 1},
    ]
    marketing_before = await shop.balance(MARKETING)
    promoter = f"p-{uuid.uuid4().hex[:8]}"
    order = await settled_with_coupon(shop, k, promoter, items)
    order_no, m = order["order_no"], order["merchant_id"]
    available, payable = f"merchant:{m}:available", f"promoter:{promoter}:payable"
    # paid 9000 − 900 + 200 delivery = 8300; the platform's 900 joins it: gross 9200, settled as
    # commission 10% = 920, promoter 2% = 184, merchant 8096
    assert (order["paid_minor"], order["subsidy_minor"]) == (8300, 900)
    assert await shop.balance(MARKETING) - marketing_before == 900
    assert (await shop.balance(available), await shop.balance(payable)) == (8096, 184)

    headers = {**shop.as_(Role.FINANCE), "Idempotency-Key": uuid.uuid4().hex}
    body = {"sku_id": "sku-a", "quantity": 1, "reason": "one was broken"}
    r = await shop.api.post(f"/v1/orders/{order_no}/refunds", json=body, headers=headers)
    assert r.status_code == 202, r.text
    await refund_reaches(shop, r.json()["refund_no"], "SUCCEEDED")
    code, lines = await moves(shop, r.json()["refund_no"])
    # the customer gets what it paid for that unit, (8000 − 800) / 2 = 3600; that unit's subsidy share
    # (800 / 2 = 400) goes back to marketing; together 4000 of the settled 9200 come back from the
    # parties in the settled proportions: commission 400, promoter 80, merchant 4000 − 400 − 80
    assert code == "REFUND_AFTER_SETTLEMENT"
    assert lines == {
        available: 3520,
        "platform:commission_revenue": 400,
        payable: 80,
        "channel:wechat:clearing": -3600,
        MARKETING: -400,
    }
    assert await shop.balance(MARKETING) - marketing_before == 900 - 400
    assert (await shop.balance(available), await shop.balance(payable)) == (8096 - 3520, 184 - 80)
    assert (await shop.order(order_no))["coupons"][0]["status"] == "CONSUMED"  # not fully refunded

    # the rest (4700 paid, 500 of subsidy): every party gives back exactly what it still holds of the order
    r = await shop.request_refund(order_no, 8300 - 3600, role=Role.FINANCE, reason="the rest")
    assert r.status_code == 202, r.text
    await refund_reaches(shop, r.json()["refund_no"], "SUCCEEDED")
    code, lines = await moves(shop, r.json()["refund_no"])
    assert code == "REFUND_AFTER_SETTLEMENT"
    assert lines == {
        available: 8096 - 3520,
        "platform:commission_revenue": 920 - 400,
        payable: 184 - 80,
        "channel:wechat:clearing": -4700,
        MARKETING: -500,
    }
    assert await shop.balance(MARKETING) == marketing_before
    assert (await shop.balance(available), await shop.balance(payable)) == (0, 0)
    assert await shop.balance(f"merchant:{m}:clawback") == 0
    done = await shop.order(order_no)
    assert done["refunded_minor"] == 8300 and done["coupons"][0]["status"] == "RELEASED"


async def test_a_full_refund_after_settlement_returns_the_whole_subsidy_and_gives_the_coupon_back(shop):
    # shared: 60% of the 1000 off is the platform's (600), the merchant funds 400
    k = (await campaign(shop, funded_by="shared", platform_share_bps=6000))["id"]
    marketing_before = await shop.balance(MARKETING)
    promoter = f"p-{uuid.uuid4().hex[:8]}"
    order = await settled_with_coupon(shop, k, promoter, [{**ITEM, "quantity": 1}])
    order_no, m = order["order_no"], order["merchant_id"]
    c = order["coupons"][0]["coupon_id"]
    # paid 8800 − 1000 + 200 = 8000, gross 8600: commission 860, promoter 172, merchant 7568
    assert (order["paid_minor"], order["subsidy_minor"]) == (8000, 600)
    assert await shop.balance(f"merchant:{m}:available") == 7568
    assert await spent(shop, k) == 1000
    r = await shop.request_refund(order_no, 8000, role=Role.FINANCE, reason="never happened")
    assert r.status_code == 202, r.text
    await refund_reaches(shop, r.json()["refund_no"], "SUCCEEDED")
    code, lines = await moves(shop, r.json()["refund_no"])
    assert code == "REFUND_AFTER_SETTLEMENT"
    assert lines == {
        f"merchant:{m}:available": 7568,
        "platform:commission_revenue": 860,
        f"promoter:{promoter}:payable": 172,
        "channel:wechat:clearing": -8000,
        MARKETING: -600,
    }
    assert await shop.balance(MARKETING) == marketing_before  # every cent of the subsidy came back
    assert await shop.balance(f"merchant:{m}:available") == 0
    assert await shop.balance(f"promoter:{promoter}:payable") == 0
    refunded = await shop.order(order_no)
    assert refunded["refunded_minor"] == 8000 and refunded["coupons"][0]["status"] == "RELEASED"
    assert await spent(shop, k) == 0
    again = await shop.placed(m, coupon_ids=[c], items=[{**ITEM, "quantity": 1}])  # usable again
    assert again["payable_minor"] == 8000
    assert await spent(shop, k) == 1000
