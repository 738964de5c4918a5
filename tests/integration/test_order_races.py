"""Orders under races: stock after a paid cancellation, the customer's confirm against auto-confirm, and a
cancel against the customer paying. Each ends in exactly one outcome, with the money where it belongs."""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

from domain.access import Role
from tests.support.sandbox_receiver import eventually
from tests.support.shop import Shop
from tests.support.stack import api_with

AUTO_CONFIRM_SECONDS = 5  # BACKOFFICE_AUTO_CONFIRM_SECONDS of the test stack


async def tracked_order(shop: Shop, stock: int, quantity: int, **overrides: Any) -> tuple[str, str, dict[str, Any]]:
    """(merchant, sku, placed order) for an order of `quantity` units of a SKU with `stock` units."""
    merchant_id = await shop.merchant()
    sku = f"sku-{uuid.uuid4().hex[:8]}"
    await shop.stock(merchant_id, sku, stock)
    item = {
        "sku_id": sku,
        "name": "Sofa cleaning",
        "category_id": "home",
        "unit_price_minor": 4000,
        "quantity": quantity,
    }
    placed = await shop.placed(merchant_id, items=[item], **overrides)
    assert await shop.available(merchant_id, sku) == stock - quantity
    return merchant_id, sku, placed


async def cancel(shop: Shop, order_no: str, reason: str) -> Any:
    return await shop.api.post(f"/v1/orders/{order_no}/cancel", json={"reason": reason}, headers=shop.as_(Role.SERVICE))


def events(order: dict[str, Any], name: str) -> list[dict[str, Any]]:
    return [e for e in order["timeline"] if e["event"] == name]


async def test_cancelling_a_paid_order_releases_its_stock_and_refunds_it_in_full(shop):
    merchant_id, sku, placed = await tracked_order(shop, stock=4, quantity=3, channel="alipay")
    await shop.pay(placed["payment"]["pay_url"])
    paid = await shop.reaches(placed["order_no"], "AWAITING_MERCHANT")
    assert await shop.available(merchant_id, sku) == 1  # paid: still reserved
    r = await cancel(shop, placed["order_no"], "customer cancelled after paying")
    assert r.status_code == 200 and r.json()["status"] == "CANCELLED", r.text
    assert await shop.available(merchant_id, sku) == 4
    order = await shop.refunded(placed["order_no"], paid["paid_minor"])
    assert order["paid_minor"] == placed["payable_minor"] == 3 * 4000 + 200
    assert [
        (x["amount_minor"], x["status"]) for x in await shop.channel_refunds("alipay", placed["payment"]["payment_no"])
    ] == [(placed["payable_minor"], "SUCCESS")]
    # Released once: a second cancel is refused and the stock does not grow again.
    assert (await cancel(shop, placed["order_no"], "again")).status_code == 409
    assert await shop.available(merchant_id, sku) == 4


async def delivered(shop: Shop) -> str:
    return str((await shop.delivered(await shop.merchant()))["order_no"])


async def confirm_around_the_deadline(shop: Shop, order_no: str, after: float) -> list[int]:
    """The customer taps "confirm" twice at once, `after` seconds after delivery (auto-confirm is at 5 s)."""
    await asyncio.sleep(after)  # the race itself: timed against the flow's own timer
    url = f"/v1/orders/{order_no}/confirm"
    answers = await asyncio.gather(*(shop.api.post(url, headers=shop.as_(Role.SERVICE)) for _ in range(2)))
    for a in answers:
        assert a.status_code == 200 or (a.status_code == 409 and "only a delivered order" in a.json()["detail"]), a.text
    return [a.status_code for a in answers]


async def test_a_confirm_racing_auto_confirm_completes_the_order_once_and_makes_it_settleable_once(shop):
    offsets = (
        AUTO_CONFIRM_SECONDS - 0.4,
        AUTO_CONFIRM_SECONDS - 0.1,
        AUTO_CONFIRM_SECONDS + 0.1,
        AUTO_CONFIRM_SECONDS + 0.4,
    )
    order_nos = await asyncio.gather(*(delivered(shop) for _ in offsets))
    answers = await asyncio.gather(
        *(confirm_around_the_deadline(shop, no, after) for no, after in zip(order_nos, offsets, strict=True))
    )
    for order_no, codes in zip(order_nos, answers, strict=True):
        order = await shop.reaches(order_no, "COMPLETED", within=20, settleable=True)
        [completed] = events(order, "completed")
        # At most one of the two taps wins, and only if the timer had not fired yet.
        assert sorted(codes) in ([200, 409], [409, 409]), codes
        assert completed["cause"] == ("customer confirmed" if 200 in codes else "auto-confirmed"), (codes, completed)
        assert len(events(order, "settleable")) == 1, order["timeline"]


async def test_a_cancel_racing_the_payment_ends_cancelled_and_refunded_or_unpaid_never_paid_and_kept(shop):
    """Cancel and pay are sent a few hundred ms apart, either first: whichever lands first, the order ends
    CANCELLED and either nothing was captured (the channel order closed) or all of it went back."""
    # The suite's 8 s payment deadline could pass while a loaded machine is still placing the five orders:
    # the flow would then close the payment itself and the race would never be run. Orders placed here get
    # a deadline no setup can reach, so the cancel is what ends each unpaid payment.
    async with api_with(shop.services, BACKOFFICE_PAYMENT_TIMEOUT_SECONDS="300"):
        await _cancel_racing_the_payment(shop)


async def _cancel_racing_the_payment(shop: Shop) -> None:
    pay_after_cancel = (-0.05, 0.0, 0.15, 0.4, 0.8)  # seconds; negative: the customer pays first
    orders = [await tracked_order(shop, stock=2, quantity=1, channel="wechat") for _ in pay_after_cancel]

    async def race(placed: dict[str, Any], lag: float) -> int:
        async def after(delay: float, call: Any) -> Any:
            await asyncio.sleep(max(delay, 0))  # the race itself: how far apart the two requests go out
            return await call()

        paid, cancelled = await asyncio.gather(
            after(lag, lambda: shop.pay(placed["payment"]["pay_url"])),
            after(-lag, lambda: cancel(shop, placed["order_no"], "race")),
        )
        assert cancelled.status_code == 200 and cancelled.json()["status"] == "CANCELLED", cancelled.text
        assert paid.status_code in (200, 409), paid.text
        return int(paid.status_code)

    outcomes = await asyncio.gather(
        *(race(placed, lag) for (_, _, placed), lag in zip(orders, pay_after_cancel, strict=True))
    )
    for (merchant_id, sku, placed), paid in zip(orders, outcomes, strict=True):
        payment_no, amount = placed["payment"]["payment_no"], placed["payable_minor"]
        if paid == 200:  # the customer's money reached the channel: captured once, returned once, in full
            order = await shop.refunded(placed["order_no"], amount, within=40)
            assert await shop.ledger_entries(payment_no, "PAYMENT_CAPTURED") == 1
            assert [(x["amount_minor"], x["status"]) for x in await shop.channel_refunds("wechat", payment_no)] == [
                (amount, "SUCCESS")
            ]
        else:  # the channel closed the order first: the customer could not pay and nothing was booked

            async def closed(order_no: str = placed["order_no"]) -> dict[str, Any] | None:
                o = await shop.order(order_no)
                return o if o["payments"][0]["status"] == "CLOSED" else None

            order = await eventually(closed, 20)
            assert (await shop.channel_order("wechat", payment_no))["status"] == "CLOSED"
            assert await shop.ledger_entries(payment_no) == 0
            assert order["paid_minor"] == 0 and order["refunded_minor"] == 0 and order["refunds"] == []
        assert order["status"] == "CANCELLED" and order["cancel_reason"] == "race"
        assert await shop.available(merchant_id, sku) == 2
