"""Metrics: the API counts requests by route template and status; the worker's business figures move by
exactly what one order did; the Temporal SDK's own metrics are served; /ready follows the worker."""

from __future__ import annotations

import asyncio
import time

from sqlalchemy import func, select

from db.engine import unit_of_work
from db.models.orders import Order
from db.models.refunds import Capture
from tests.support.metrics import names, scrape, value
from tests.support.sandbox_receiver import eventually


async def test_api_counts_requests_by_route_template_and_status(shop):
    merchant_id = await shop.merchant()
    placed = await shop.placed(merchant_id)
    order_no = placed["order_no"]
    url = shop.services.metrics_urls()["api"]
    before = await scrape(url)
    await shop.order(order_no)
    await shop.order(order_no)
    missing = await shop.api.get("/v1/orders/ORD-no-such-order", headers=shop.as_("operator"))
    assert missing.status_code == 404
    after = await scrape(url)

    route = "/v1/orders/{order_no}"

    def moved(status: str) -> float:
        key = {"method": "GET", "route": route, "status": status}
        return value(after, "backoffice_http_requests_total", **key) - value(
            before, "backoffice_http_requests_total", **key
        )

    assert moved("200") == 2
    assert moved("404") == 1
    # One series per endpoint, not per order: no label carries the raw path.
    assert not any(order_no in dict(labels).get("route", "") for _, labels in after)
    timed = {"method": "GET", "route": route}
    assert value(after, "backoffice_http_request_duration_seconds_count", **timed) - value(
        before, "backoffice_http_request_duration_seconds_count", **timed
    ) == 3
    # The placement itself was counted under its template too (201 from POST /v1/orders).
    assert value(after, "backoffice_http_requests_total", method="POST", route="/v1/orders", status="201") >= 1


async def _db_counts(sessions):
    async with unit_of_work(sessions) as session:
        by_status = dict((await session.execute(select(Order.status, func.count()).group_by(Order.status))).all())
        captures = {
            (ch, cur): (n, int(amount))
            for ch, cur, n, amount in await session.execute(
                select(Capture.channel, Capture.currency, func.count(), func.sum(Capture.amount_minor)).group_by(
                    Capture.channel, Capture.currency
                )
            )
        }
    return by_status, captures


async def test_business_metrics_move_by_exactly_what_one_order_did(shop):
    url = shop.services.metrics_urls()["worker"]
    merchant_id = await shop.merchant()
    before = await scrape(url)
    # The figures are the records' counts, taken at scrape time (nothing is counted in activities).
    db_before, captures_before = await _db_counts(shop.sessions)
    assert value(before, "backoffice_orders_created_total") == sum(db_before.values())

    order = await shop.delivered(merchant_id, channel="wechat")
    r = await shop.api.post(f"/v1/orders/{order['order_no']}/confirm", headers=shop.as_("service"))
    assert r.status_code == 200, r.text
    await shop.reaches(order["order_no"], "COMPLETED")
    after = await scrape(url)
    db_after, captures_after = await _db_counts(shop.sessions)

    # Only API calls create orders, so exactly one more; completions and captures of other tests' flows
    # finishing meanwhile are counted from the records independently of the collector.
    assert value(after, "backoffice_orders_created_total") - value(before, "backoffice_orders_created_total") == 1
    others_completed = db_after.get("COMPLETED", 0) - db_before.get("COMPLETED", 0) - 1
    assert value(after, "backoffice_orders_completed_total") - value(
        before, "backoffice_orders_completed_total"
    ) == 1 + others_completed
    key = ("wechat", order["currency"])
    n0, amount0 = captures_before.get(key, (0, 0))
    n1, amount1 = captures_after[key]
    labels = {"channel": "wechat", "currency": order["currency"]}
    assert value(after, "backoffice_payments_captured_total", **labels) == n1
    assert value(after, "backoffice_payments_captured_total", **labels) - value(
        before, "backoffice_payments_captured_total", **labels
    ) == n1 - n0 >= 1
    moved = value(after, "backoffice_payments_captured_amount_minor_total", **labels) - value(
        before, "backoffice_payments_captured_amount_minor_total", **labels
    )
    assert moved == amount1 - amount0 and moved >= order["paid_minor"] > 0
    assert value(after, "backoffice_ledger_trial_balance_ok") == 1
    assert value(after, "backoffice_metrics_collect_ok") == 1
    assert value(after, "backoffice_task_queue_pollers", task_queue="backoffice", kind="activity") >= 1


async def test_the_worker_serves_the_temporal_sdk_metrics(shop):
    merchant_id = await shop.merchant()
    await shop.placed(merchant_id)
    sdk = await scrape(shop.services.metrics_urls()["temporal-sdk"])
    found = names(sdk)
    for name in (
        "temporal_workflow_task_schedule_to_start_latency_seconds_bucket",
        "temporal_activity_execution_latency_seconds_bucket",
        "temporal_worker_task_slots_available",
        "temporal_sticky_cache_size",
    ):
        assert name in found, sorted(n for n in found if not n.endswith(("_bucket", "_sum")))


async def test_ready_says_503_while_no_worker_polls_and_recovers(shop, api):
    r = await api.get("/ready")
    assert r.status_code == 200, r.text
    assert r.json()["pollers"]["backoffice"]["workflow"] >= 1
    services = shop.services
    services.children["worker"].kill()
    try:

        async def not_ready():
            answer = await api.get("/ready")
            return answer if answer.status_code == 503 else None

        down = await eventually(not_ready, within=60)
        assert down.json()["ready"] is False and "no worker polls" in down.json()["problem"]
    finally:
        services.start("worker")

    async def ready_again():
        answer = await api.get("/ready")
        return answer if answer.status_code == 200 else None

    started = time.monotonic()
    up = await eventually(ready_again, within=60)
    assert up.json()["ready"] is True
    assert time.monotonic() - started < 60
    await asyncio.sleep(0)
