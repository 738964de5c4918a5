"""A worker killed while orders wait for payment: a new one picks every flow up, each finishes once."""

from __future__ import annotations

from sqlalchemy import func, select

from db.engine import unit_of_work
from db.models import JournalEntry


async def test_orders_waiting_for_payment_survive_a_worker_crash(shop):
    merchant_id = await shop.merchant()
    placed = [await shop.placed(merchant_id, channel="wechat" if i % 2 else "alipay") for i in range(6)]
    try:
        # Polling off: only the callbacks, signalled while no worker runs, can tell the flows they were paid.
        for channel in ("wechat", "alipay"):
            await shop.faults(channel, query_down=True)
        shop.services.children["worker"].kill()  # SIGKILL: no graceful shutdown, as in a crash
        for p in placed:
            assert (await shop.pay(p["payment"]["pay_url"])).status_code == 200
        for p in placed:  # each callback was accepted by the platform while the worker was dead
            await shop.callback_delivered(p["payment"]["payment_no"])
        assert not shop.services.children["worker"].alive
        shop.services.start("worker")
        for p in placed:
            order = await shop.reaches(p["order_no"], "AWAITING_MERCHANT", within=30)
            assert order["paid_minor"] == p["payable_minor"]
            assert [e["event"] for e in order["timeline"]] == ["created", "paid"]
    finally:
        await shop.reset_faults()
    async with unit_of_work(shop.sessions) as session:
        captures = (
            await session.execute(
                select(JournalEntry.reference, func.count())
                .where(
                    JournalEntry.tx_code == "PAYMENT_CAPTURED",
                    JournalEntry.reference.in_([p["payment"]["payment_no"] for p in placed]),
                )
                .group_by(JournalEntry.reference)
            )
        ).all()
    assert sorted(n for _, n in captures) == [1] * len(placed)
    for p in placed:  # and the flows go on normally afterwards
        order = await shop.order(p["order_no"])
        assert (await shop.accept(order)).status_code == 200
