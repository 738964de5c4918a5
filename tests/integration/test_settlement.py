"""Settlement: commission routing, cycles, auto-approval, finance decisions, clawback, crashes."""

from __future__ import annotations

import asyncio
import csv
import io
import uuid
from datetime import UTC, datetime, timedelta

from sqlalchemy import func, select

from db import demo
from db import settlement_work as work
from db.api_keys import issue_key
from db.engine import unit_of_work
from db.models import Order, SettlementLine, SettlementQueued
from domain.access import Role
from domain.accounts import COMMISSION, merchant_account, promoter_payable
from tests.support.sandbox_receiver import eventually
from tests.support.shop import bearer, refused_with, stage_of
from workflows.ids import statement_workflow_id

BIG = 600_000  # two of these are over the auto-approval threshold (1,000,000)


async def run_cycle(shop, cutoff: datetime | None = None) -> dict:  # type: ignore[no-untyped-def,type-arg]
    if cutoff is None:
        # A cutoff is a whole second and names its cycle: a run within the same second as the previous one
        # would be that cycle again (by design), so a test that wants a new cycle waits for the next second.
        await asyncio.sleep(1.05)
    body = {"cutoff": cutoff.isoformat()} if cutoff else {}
    r = await shop.api.post("/v1/settlement-runs", json=body, headers=shop.as_(Role.FINANCE))
    assert r.status_code == 202, r.text
    return r.json()


async def cycle_reaches(shop, cycle_id: str, status: str, within: float = 30) -> dict:  # type: ignore[no-untyped-def,type-arg]
    async def check() -> dict | None:  # type: ignore[type-arg]
        r = await shop.api.get(f"/v1/settlement-runs/{cycle_id}", headers=shop.as_(Role.FINANCE))
        return r.json() if r.status_code == 200 and r.json()["status"] == status else None

    try:
        result: dict = await eventually(check, within)  # type: ignore[type-arg]
    except AssertionError:
        r = await shop.api.get(f"/v1/settlement-runs/{cycle_id}", headers=shop.as_(Role.FINANCE))
        pending = await shop.api.get(
            "/v1/settlements", params={"status": "PENDING_APPROVAL"}, headers=shop.as_(Role.FINANCE)
        )
        raise AssertionError(f"cycle {cycle_id} not {status}: {r.text}; pending: {pending.text[:500]}") from None
    return result


async def statements_of(shop, merchant_id: str) -> list[dict]:  # type: ignore[no-untyped-def,type-arg]
    r = await shop.api.get("/v1/settlements", params={"merchant_id": merchant_id}, headers=shop.as_(Role.FINANCE))
    assert r.status_code == 200, r.text
    body: list[dict] = r.json()  # type: ignore[type-arg]
    return body


async def seeded(shop, count: int, amount: int, **kw) -> tuple[str, list[str]]:  # type: ignore[no-untyped-def]
    merchant_id = await shop.merchant()
    async with unit_of_work(shop.sessions) as session:
        orders = await demo.seed_settleable_orders(session, merchant_id, count, amount_minor=amount, **kw)
    return merchant_id, orders


async def test_the_most_specific_valid_rule_is_snapshotted_on_the_order(shop):
    merchant_id = await shop.merchant()
    now = datetime.now(UTC)
    finance = {**shop.as_(Role.FINANCE)}
    rules = [
        {"scope": "merchant", "scope_value": merchant_id, "rate_bps": 300, "valid_from": now.isoformat()},
        {
            "scope": "product",
            "scope_value": "sku-clean-2h",
            "rate_bps": 150,
            "priority": 1,
            "valid_from": (now - timedelta(days=1)).isoformat(),
            "valid_to": (now + timedelta(days=1)).isoformat(),
        },
        {
            "scope": "product",
            "scope_value": "sku-clean-2h",
            "rate_bps": 100,
            "priority": 5,
            "valid_from": (now + timedelta(days=1)).isoformat(),
        },  # not valid yet
    ]
    ids = []
    for body in rules:
        r = await shop.api.post(
            "/v1/commission-rules", json=body, headers={**finance, "Idempotency-Key": uuid.uuid4().hex}
        )
        assert r.status_code == 201, r.text
        ids.append(r.json()["rule_id"])
    bad = await shop.api.post(
        "/v1/commission-rules",
        json={"scope": "default", "scope_value": "x", "rate_bps": 1, "valid_from": now.isoformat()},
        headers={**finance, "Idempotency-Key": uuid.uuid4().hex},
    )
    refused_with(bad, 422, "INVALID_REQUEST")
    placed = await shop.placed(merchant_id)
    snap = (await shop.order(placed["order_no"]))["commission"]
    assert (snap["rule_id"], snap["rate_bps"], snap["scope"]) == (ids[1], 150, "product")
    assert snap["chosen_on"]["merchant_id"] == merchant_id
    # disabling the product rule: the next order falls back to the merchant rule; the first keeps its snapshot
    assert (await shop.api.post(f"/v1/commission-rules/{ids[1]}/disable", headers=finance)).status_code == 200
    second = await shop.placed(merchant_id)
    assert (await shop.order(second["order_no"]))["commission"]["rule_id"] == ids[0]
    assert (await shop.order(placed["order_no"]))["commission"]["rule_id"] == ids[1]


async def test_a_small_cycle_auto_approves_and_posts_the_split_exactly_once(shop, temporal):
    merchant_id, orders = await seeded(shop, 7, 10_001, commission_bps=333, promoter_id="prom-1", promoter_bps=200)
    before = await shop.balance(promoter_payable("prom-1"))
    cycle = await run_cycle(shop)
    await cycle_reaches(shop, cycle["cycle_id"], "CLOSED")
    assert await lines_of(shop, cycle["cycle_id"], merchant_id) == 7  # the cycle also takes other tests' orders
    [st] = await statements_of(shop, merchant_id)
    # per order: base 10001, commission 3.33% = 333.03 → 333, promoter 2% = 200.02 → 200, net 9468
    assert (st["status"], st["approved_by"], st["order_count"]) == ("APPROVED", "auto", 7)
    assert (st["commission_minor"], st["promoter_minor"], st["net_minor"]) == (7 * 333, 7 * 200, 7 * 9468)
    assert await shop.balance(merchant_account(merchant_id, "available")) == 7 * 9468
    assert await shop.balance(promoter_payable("prom-1")) - before == 7 * 200
    async with unit_of_work(shop.sessions) as session:
        settled = (
            await session.execute(
                select(func.count()).select_from(Order).where(Order.order_no.in_(orders), work.settled())
            )
        ).scalar_one()
    assert settled == 7
    # the same cutoff again: the same cycle, nothing settled twice
    again = await run_cycle(shop, datetime.fromisoformat(cycle["cutoff"]))
    assert again["cycle_id"] == cycle["cycle_id"]
    assert await shop.ledger_entries(f"statement-{st['id']}", "SETTLEMENT") == 1
    assert [s["id"] for s in await statements_of(shop, merchant_id)] == [st["id"]]
    r = await shop.api.get(f"/v1/settlements/{st['id']}", params={"format": "csv"}, headers=shop.as_(Role.FINANCE))
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/csv")
    rows = list(csv.DictReader(io.StringIO(r.text.lstrip("\ufeff"))))
    assert len(rows) == 8 and rows[-1]["order_no"] == "TOTAL" and int(rows[-1]["net_minor"]) == 7 * 9468


async def test_a_cycle_with_nothing_to_settle_closes_empty(shop):
    cycle = await run_cycle(shop, datetime(2020, 1, 1, tzinfo=UTC))
    done = await cycle_reaches(shop, cycle["cycle_id"], "CLOSED")
    assert (done["orders"], done["statements"]) == (0, 0)
    future = await shop.api.post(
        "/v1/settlement-runs", json={"cutoff": "2999-01-01T00:00:00Z"}, headers=shop.as_(Role.FINANCE)
    )
    refused_with(future, 422, "CUTOFF_IN_FUTURE")
    refused_with(await shop.api.post("/v1/settlement-runs", json={}, headers=shop.as_(Role.SERVICE)), 403, "FORBIDDEN")


async def test_big_statements_wait_for_finance_and_the_adjuster_cannot_approve(shop, temporal):
    async with unit_of_work(shop.sessions) as session:
        _, alice = await issue_key(session, role=Role.FINANCE, name="alice")
        _, bob = await issue_key(session, role=Role.FINANCE, name="bob")
    merchant_id, _ = await seeded(shop, 2, BIG, commission_bps=500)
    cycle = await run_cycle(shop)

    async def pending() -> dict | None:  # type: ignore[type-arg]
        sts = await statements_of(shop, merchant_id)
        return sts[0] if sts and sts[0]["status"] == "PENDING_APPROVAL" else None

    try:
        st = await eventually(pending, 30)
    except AssertionError:
        r = await shop.api.get(f"/v1/settlement-runs/{cycle['cycle_id']}", headers=shop.as_(Role.FINANCE))
        raise AssertionError((cycle, r.text, await statements_of(shop, merchant_id))) from None
    details = await stage_of(temporal, statement_workflow_id(st["id"]), "AWAITING_FINANCE_APPROVAL")
    assert merchant_id in details and str(st["net_minor"]) in details and "since" in details
    await eventually(lambda: _reminded(temporal, st["id"]), 10)

    adj = await shop.api.post(
        f"/v1/settlements/{st['id']}/adjustments",
        json={"amount_minor": 100, "reason": "goodwill"},
        headers=bearer(alice),
    )
    assert adj.status_code == 200, adj.text
    assert adj.json()["net_minor"] == st["net_minor"] + 100
    too_big = await shop.api.post(
        f"/v1/settlements/{st['id']}/adjustments", json={"amount_minor": 10**9, "reason": "x"}, headers=bearer(bob)
    )
    refused_with(too_big, 422, "ADJUSTMENT_TOO_LARGE")
    own = await shop.api.post(f"/v1/settlements/{st['id']}/approve", json={}, headers=bearer(alice))
    assert "adjusted" in refused_with(own, 403, "SAME_PERSON")["detail"]
    ok = await shop.api.post(f"/v1/settlements/{st['id']}/approve", json={"note": "checked"}, headers=bearer(bob))
    assert ok.status_code == 200 and ok.json()["status"] == "APPROVED", ok.text
    assert await shop.balance(merchant_account(merchant_id, "available")) == st["net_minor"] + 100
    again = await shop.api.post(f"/v1/settlements/{st['id']}/approve", json={}, headers=bearer(bob))
    refused_with(again, 409, "FLOW_NOT_RUNNING")
    await cycle_reaches(shop, cycle["cycle_id"], "CLOSED")


async def _reminded(temporal, statement_id: int) -> bool:  # type: ignore[no-untyped-def]
    return "reminder" in await stage_of(temporal, statement_workflow_id(statement_id), "AWAITING_FINANCE_APPROVAL")


async def test_a_rejected_statement_returns_its_orders_to_the_next_cycle(shop, temporal):
    merchant_id, orders = await seeded(shop, 2, BIG)
    cycle = await run_cycle(shop)

    async def pending() -> dict | None:  # type: ignore[type-arg]
        sts = await statements_of(shop, merchant_id)
        return sts[0] if sts and sts[0]["status"] == "PENDING_APPROVAL" else None

    st = await eventually(pending, 30)
    await stage_of(temporal, statement_workflow_id(st["id"]), "AWAITING_FINANCE_APPROVAL")
    r = await shop.api.post(
        f"/v1/settlements/{st['id']}/reject", json={"reason": "disputed volume"}, headers=shop.as_(Role.FINANCE)
    )
    assert r.status_code == 200 and r.json()["status"] == "REJECTED"
    await cycle_reaches(shop, cycle["cycle_id"], "CLOSED")
    assert await shop.balance(merchant_account(merchant_id, "available")) == 0
    async with unit_of_work(shop.sessions) as session:
        queued = (
            await session.execute(
                select(func.count()).select_from(SettlementQueued).where(SettlementQueued.order_no.in_(orders))
            )
        ).scalar_one()
    assert queued == 2
    nxt = await run_cycle(shop)
    try:
        st2 = await eventually(lambda: _newer_pending(shop, merchant_id, st["id"]), 30)
    except AssertionError:
        r = await shop.api.get(f"/v1/settlement-runs/{nxt['cycle_id']}", headers=shop.as_(Role.FINANCE))
        raise AssertionError((nxt, r.text, await statements_of(shop, merchant_id))) from None
    assert st2["cycle_id"] == nxt["cycle_id"] and st2["order_count"] == 2
    await stage_of(temporal, statement_workflow_id(st2["id"]), "AWAITING_FINANCE_APPROVAL")
    await shop.api.post(f"/v1/settlements/{st2['id']}/approve", json={}, headers=shop.as_(Role.FINANCE))
    await cycle_reaches(shop, nxt["cycle_id"], "CLOSED")


async def _newer_pending(shop, merchant_id: str, old_id: int) -> dict | None:  # type: ignore[no-untyped-def,type-arg]
    sts = [s for s in await statements_of(shop, merchant_id) if s["id"] != old_id and s["status"] == "PENDING_APPROVAL"]
    return sts[0] if sts else None


async def settled_real_order(shop) -> dict:  # type: ignore[no-untyped-def,type-arg]
    """An order lived end to end (paid through the channel), then settled by a cycle."""
    order = await shop.delivered(await shop.merchant())
    assert (
        await shop.api.post(f"/v1/orders/{order['order_no']}/confirm", headers=shop.as_(Role.SERVICE))
    ).status_code == 200
    await shop.reaches(order["order_no"], "COMPLETED", within=20, settleable=True)
    cycle = await run_cycle(shop)
    await cycle_reaches(shop, cycle["cycle_id"], "CLOSED")
    return await shop.reaches(order["order_no"], "COMPLETED", settled=True)


async def test_a_refund_after_settlement_claws_back_merchant_net_and_commission(shop):
    order = await settled_real_order(shop)
    merchant_id, paid = order["merchant_id"], order["paid_minor"]  # 9000, commission 5% = 450, net 8550
    available = merchant_account(merchant_id, "available")
    assert await shop.balance(available) == 8550
    commission = await shop.balance(COMMISSION)
    late = await shop.request_refund(order["order_no"], 1000)  # the app's after-sale window has closed
    assert "window" in refused_with(late, 409, "AFTER_SALE_CLOSED")["detail"]
    first = await shop.request_refund(order["order_no"], 1000, role=Role.FINANCE, reason="dispute settled")
    assert first.status_code == 202, first.text
    await eventually(lambda: _refund_done(shop, first.json()["refund_no"]), 20)
    assert await shop.ledger_entries(first.json()["refund_no"], "REFUND_AFTER_SETTLEMENT") == 1
    assert await shop.balance(available) == 8550 - 950  # 1000 less its 5% commission share
    assert await shop.balance(COMMISSION) == commission - 50
    # The merchant has since moved most of its balance out (frozen for a withdrawal): a further
    # refund takes what is left and the rest becomes a debt on its clawback account.
    # Seeded as the withdrawal flow's freeze writes it: the frozen record and its posting together (a
    # withdrawal awaiting finance that no flow will move on).
    async with unit_of_work(shop.sessions) as session:
        from db.ledger import post
        from db.models import Withdrawal
        from domain.ledger import withdrawal_requested

        wid = f"wd-{uuid.uuid4().hex[:20]}"
        freeze = await post(session, withdrawal_requested(f"withdrawal-freeze:{wid}", wid, "CNY", 7000, merchant_id))
        session.add(
            Withdrawal(
                withdrawal_id=wid,
                merchant_id=merchant_id,
                amount_minor=7000,
                currency="CNY",
                status="PENDING_APPROVAL",
                bank_account_name="Seed",
                bank_account_enc="-",
                bank_account_last4="0000",
                bank_name="Seed bank",
                requested_by="test",
                freeze_entry_id=freeze.entry_id,
            )
        )
    rest = await shop.request_refund(order["order_no"], paid - 1000, role=Role.FINANCE, reason="full refund")
    assert rest.status_code == 202, rest.text
    await eventually(lambda: _refund_done(shop, rest.json()["refund_no"]), 20)
    # 8000 refunded: commission share 400, merchant share 7600 of which 600 was available
    assert await shop.balance(available) == 0
    assert await shop.balance(merchant_account(merchant_id, "clawback")) == -7000
    assert (await shop.order(order["order_no"]))["refunded_minor"] == paid
    r = await shop.api.get(f"/v1/merchants/{merchant_id}/balance", headers=bearer(shop.merchant_keys[merchant_id]))
    assert r.status_code == 200, r.text
    assert (r.json()["available_minor"], r.json()["withdrawing_minor"]) == (-7000, 7000)
    other = await shop.merchant()
    assert (
        await shop.api.get(f"/v1/merchants/{merchant_id}/balance", headers=bearer(shop.merchant_keys[other]))
    ).status_code == 404  # another merchant's resource does not exist for this one


async def _refund_done(shop, refund_no: str) -> bool:  # type: ignore[no-untyped-def]
    return (await shop.refund(refund_no))["status"] == "SUCCEEDED"


async def lines_of(shop, cycle_id: str, merchant_id: str) -> int:  # type: ignore[no-untyped-def]
    async with unit_of_work(shop.sessions) as session:
        q = select(func.count()).where(SettlementLine.cycle_id == cycle_id, SettlementLine.merchant_id == merchant_id)
        return int((await session.execute(q)).scalar_one())


async def test_a_worker_killed_mid_cycle_posts_every_statement_exactly_once(shop):
    merchant_id, orders = await seeded(shop, 3000, 100)  # net 285,000: auto-approved; 15 claim pages of 200
    cycle = await run_cycle(shop)

    async def claiming() -> int:  # some but not all of the merchant's lines are written
        n = await lines_of(shop, cycle["cycle_id"], merchant_id)
        return n if 0 < n < 3000 else 0

    await eventually(claiming, 30)
    shop.services.children["worker"].kill()
    # The crash happened while the cycle was claiming: the dead worker left it part-way.
    assert 0 < await lines_of(shop, cycle["cycle_id"], merchant_id) < 3000
    shop.services.start("worker")
    done = await cycle_reaches(shop, cycle["cycle_id"], "CLOSED", within=90)
    assert await lines_of(shop, cycle["cycle_id"], merchant_id) == 3000
    [st] = await statements_of(shop, merchant_id)
    assert (st["status"], st["order_count"], st["net_minor"]) == ("APPROVED", 3000, 3000 * 95)
    assert await shop.ledger_entries(f"statement-{st['id']}", "SETTLEMENT") == 1
    assert await shop.balance(merchant_account(merchant_id, "available")) == 3000 * 95
    async with unit_of_work(shop.sessions) as session:
        q = select(func.count()).select_from(Order).where(Order.order_no.in_(orders), work.settled())
        assert (await session.execute(q)).scalar_one() == 3000
    assert done["statements"] >= 1


async def test_orders_refunded_in_full_settle_without_moving_money(shop):
    merchant_id, [order_no] = await seeded(shop, 1, 5000)
    async with unit_of_work(shop.sessions) as session:
        order = await session.get(Order, order_no)
        assert order is not None
        order.refunded_minor = 5000  # as a completed refund would have left it (escrow kept by the seed)
    cycle = await run_cycle(shop)
    await cycle_reaches(shop, cycle["cycle_id"], "CLOSED")
    [st] = await statements_of(shop, merchant_id)
    assert (st["status"], st["net_minor"], st["commission_minor"]) == ("APPROVED", 0, 0)
    assert await shop.balance(merchant_account(merchant_id, "available")) == 0
