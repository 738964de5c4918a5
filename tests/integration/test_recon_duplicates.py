"""The cross-channel DUPLICATE_PAYMENT rule end to end: one order paid through WeChat Pay and Alipay (a
lost create at the first channel), the platform capturing both and refunding the second by itself;
each channel's run of the day. The channel whose capture is the extra one reports a DUPLICATE_PAYMENT
for the payment, the other channel nothing, and the refund of the extra payment matches its bill row.
"""

from __future__ import annotations

from typing import Any

from tests.integration.test_recon import discrepancies_of, run_recon, today
from tests.support.sandbox_receiver import eventually
from tests.support.shop import Shop
from tests.support.two_channels import paid_through_two_channels


async def test_one_order_paid_through_both_channels_is_a_duplicate_payment_where_it_was_paid_extra(
    shop: Shop, temporal: Any
) -> None:
    placed = await paid_through_two_channels(shop, await shop.merchant())
    payment_no, amount = placed["payment"]["payment_no"], placed["payable_minor"]

    async def duplicate_refunded() -> dict[str, Any] | None:
        order: dict[str, Any] = await shop.order(placed["order_no"])
        return order if order["refunds"] and order["refunds"][0]["status"] == "SUCCEEDED" else None

    order = await eventually(duplicate_refunded, 30)
    kept = order["payments"][0]["channel"]
    extra = "alipay" if kept == "wechat" else "wechat"
    refund_no = order["refunds"][0]["refund_no"]
    assert order["refunds"][0]["channel"] == extra

    day = today()
    for channel in (extra, kept):
        run = await run_recon(shop, temporal, channel, day)
        assert run["status"] == "MATCHED", run["failure"]

    found = await discrepancies_of(shop, extra, {payment_no, refund_no})
    assert set(found) == {("DUPLICATE_PAYMENT", payment_no)}
    duplicate = found[("DUPLICATE_PAYMENT", payment_no)]
    assert duplicate["kind"] == "PAYMENT"

    # Its flow finds the extra payment's refund already made: resolved, and no second refund.
    async def resolved() -> bool:
        now = await discrepancies_of(shop, extra, {payment_no})
        return now[("DUPLICATE_PAYMENT", payment_no)]["status"] == "RESOLVED"

    await eventually(resolved, 30)
    assert [r["refund_no"] for r in (await shop.order(placed["order_no"]))["refunds"]] == [refund_no]
    assert (duplicate["statement_minor"], duplicate["platform_minor"]) == (amount, amount)
    assert duplicate["detail"] == "also paid through another channel"
    assert await discrepancies_of(shop, kept, {payment_no, refund_no}) == {}
