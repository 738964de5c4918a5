"""The forward order flow end to end through the API, the sandbox and the real servers."""

from __future__ import annotations

from sqlalchemy import text

from db.engine import unit_of_work
from domain.accounts import ESCROW, channel_clearing
from tests.support.shop import record_history
from workflows.ids import order_workflow_id, payment_workflow_id


async def test_an_order_goes_from_placement_to_settleable(shop, temporal):
    merchant_id = await shop.merchant()
    placed = await shop.placed(merchant_id, channel="alipay")
    assert placed["status"] == "AWAITING_PAYMENT"
    assert placed["payable_minor"] == 8800 + 200
    payment = placed["payment"]
    assert payment["channel"] == "alipay" and payment["payment_no"].startswith("PAY") and payment["pay_url"]
    order_no = placed["order_no"]

    assert (await shop.pay(payment["pay_url"])).status_code == 200
    order = await shop.reaches(order_no, "AWAITING_MERCHANT", paid_minor=9000)
    assert order["payments"][0]["status"] == "SUCCEEDED"

    accepted = await shop.accept(order)
    assert accepted.status_code == 200, accepted.text
    provider = await shop.offered_provider(order_no)

    for event in ("provider_accepted", "arrived", "delivered"):
        r = await shop.fulfil(order_no, event, provider)
        assert r.status_code == 200, r.text
    assert r.json()["status"] == "DELIVERED"
    confirmed = await shop.api.post(f"/v1/orders/{order_no}/confirm", headers=shop.as_("service"))
    assert confirmed.status_code == 200 and confirmed.json()["status"] == "COMPLETED"

    order = await shop.reaches(order_no, "COMPLETED", within=20, settleable=True)
    events = [e["event"] for e in order["timeline"]]
    assert events == [
        "created",
        "paid",
        "accepted",
        "dispatch-1",
        "provider-accepted",
        "arrived",
        "delivered",
        "completed",
        "settleable",
    ]
    assert await shop.ledger_entries(payment["payment_no"], "PAYMENT_CAPTURED") == 1
    # The order opening its payment's channel order itself (workflows/order.py: OPENS_PAYMENT); the payment
    # reporting its success by its result (PAID_BY_RESULT) and the flows' local steps, implied.
    await temporal.get_workflow_handle(order_workflow_id(order_no)).result()
    await record_history(temporal, order_workflow_id(order_no), "order_opens_payment_completed")
    await record_history(temporal, payment_workflow_id(payment["payment_no"]), "payment_opened_by_order_paid")
    # This payment's own entry (escrow and clearing are shared with every other test's flows).
    async with unit_of_work(shop.sessions) as session:
        lines = await session.execute(
            text(
                "SELECT a.code, l.side, l.amount_minor FROM journal_lines l "
                "JOIN journal_entries e ON e.id = l.entry_id JOIN ledger_accounts a ON a.id = l.account_id "
                "WHERE e.reference = :ref AND e.tx_code = 'PAYMENT_CAPTURED'"
            ),
            {"ref": payment["payment_no"]},
        )
        booked = sorted(tuple(r) for r in lines)
    assert booked == [(channel_clearing("alipay"), "D", 9000), (ESCROW, "C", 9000)]
