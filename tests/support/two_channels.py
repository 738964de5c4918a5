"""An order paid through both channels: what a lost create at the first channel leaves behind."""

from __future__ import annotations

import json
from typing import Any

from domain.settings import DEV_PARTY_SECRETS
from domain.signing import signed_headers
from tests.support.shop import Shop


async def paid_through_two_channels(shop: Shop, merchant_id: str) -> dict[str, Any]:
    """WeChat Pay timed out on create but had opened the order, the payment went to Alipay, and the
    customer paid on both; returns the placement (the platform refunds one of the two by itself)."""
    await shop.faults("wechat", down=True)
    placed = await shop.placed(merchant_id, channel="wechat")
    payment_no, amount = placed["payment"]["payment_no"], placed["payable_minor"]
    assert placed["payment"]["channel"] == "alipay"
    await shop.reset_faults()
    # What the lost first create had done at wechat (signed as the platform signs):
    body = json.dumps(
        {
            "out_trade_no": payment_no,
            "amount_minor": amount,
            "currency": "CNY",
            "description": "lost create",
            "notify_url": f"{shop.services.api_url}/v1/callbacks/wechat",
        }
    )
    created = await shop.outside.post(
        "/wechat/v1/orders",
        content=body,
        headers=signed_headers(DEV_PARTY_SECRETS["wechat"], "POST", "/wechat/v1/orders", body.encode()),
    )
    assert created.status_code == 200, created.text
    assert (await shop.pay(created.json()["pay_url"])).status_code == 200
    await shop.pay(placed["payment"]["pay_url"])
    return placed
