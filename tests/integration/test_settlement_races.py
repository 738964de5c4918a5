"""Settlement races and failures: refunds against claims, late claim pages, failed checks, concurrent
cycles, one statement that cannot be posted, and bounded cycle histories."""

from __future__ import annotations

import asyncio
import secrets
from datetime import UTC, datetime, timedelta

from sqlalchemy import delete, func, insert, select, text, update
from sqlalchemy.ext.asyncio import AsyncSession
from temporalio.api.enums.v1 import EventType
from temporalio.client import Client
from temporalio.exceptions import ApplicationError

from activities.orders import OrderActivities
from activities.refunds import RefundActivities
from db import settlement_sql as sql
from db import settlement_work as work
from db.engine import unit_of_work
from db.models import Order, Refund, SettlementCycle, SettlementLine, SettlementQueued, SettlementStatement
from domain.access import Role
from domain.accounts import merchant_account
from domain.refunds import RefundCompletion, RefundInput, RefundOrigin, RefundTerms
from domain.refusals import Refusal
from domain.settlement import CycleInput, SettlementTerms, cycle_id_for
from tests.integration.test_settlement import cycle_reaches, run_cycle, seeded, statements_of
from tests.support.sandbox_receiver import eventually
from tests.support.shop import record_history, refused_with, stage_of
from workflows.client.queues import MAIN
from workflows.ids import settlement_workflow_id, statement_workflow_id
from workflows.settlement import SettlementWorkflow

TERMS = RefundTerms(
    poll_initial_seconds=1, poll_max_seconds=2, approval_remind_seconds=2, notify_url="http://x", manual_bank="p"
)


def finance_refund(refund_no: str, order_no: str, amount_minor: int, reason: str) -> RefundInput:
    """A refund finance asks for on a seeded order (paid as PAY{order_no})."""
    return RefundInput(
        refund_no=refund_no,
        order_no=order_no,
        payment_no=f"PAY{order_no}",
        amount_minor=amount_minor,
        reason=reason,
        origin=RefundOrigin.FINANCE,
        requested_by="finance",
        terms=TERMS,
    )


async def lines_of(shop, orders: list[str]) -> dict[str, list[tuple[str, str]]]:  # type: ignore[no-untyped-def]
    """order_no -> [(cycle, statement status)] for every line of these orders."""
    async with unit_of_work(shop.sessions) as session:
        rows = (
            await session.execute(
                select(SettlementLine.order_no, SettlementLine.cycle_id, SettlementStatement.status)
                .join(
                    SettlementStatement,
                    (SettlementStatement.cycle_id == SettlementLine.cycle_id)
                    & (SettlementStatement.merchant_id == SettlementLine.merchant_id),
                    isouter=True,
                )
                .where(SettlementLine.order_no.in_(orders))
            )
        ).all()
    out: dict[str, list[tuple[str, str]]] = {o: [] for o in orders}
    for order_no, cycle_id, status in rows:
        out[order_no].append((cycle_id, status))
    return out


QUEUED = Order.order_no.in_(select(SettlementQueued.order_no))  # waiting for a cycle to claim it


async def unqueue(session: AsyncSession, orders: list[str]) -> int:
    """Take orders out of the settlement queue (out of later cycles), as an operator could."""
    return int((await session.execute(delete(SettlementQueued).where(SettlementQueued.order_no.in_(orders)))).rowcount)


async def orders_where(shop, orders: list[str], *conditions) -> int:  # type: ignore[no-untyped-def]
    async with unit_of_work(shop.sessions) as session:
        q = select(func.count()).select_from(Order).where(Order.order_no.in_(orders), *conditions)
        return int((await session.execute(q)).scalar_one())


async def test_a_refund_opened_while_a_cycle_claims_never_settles_with_it(shop, temporal):
    # Over the auto-approval threshold: the claimed orders stay claimed (unsettled) until finance approves,
    # so every refund that reaches a claimed order must be refused, and every claimed order has no refund.
    merchant_id, orders = await seeded(shop, 400, 6000, captures=True)  # 200 claimed: net 1,140,000
    refunds = RefundActivities(shop.sessions)
    gate = asyncio.Semaphore(8)  # refunds keep arriving while the cycle claims its pages

    async def open_refund(no: str) -> bool:
        async with gate:
            return await _open(no)

    async def _open(no: str) -> bool:
        try:
            await refunds.open(finance_refund(f"R{no}", no, 1500, "race"))
            return True
        except ApplicationError as exc:  # refused: the order is being settled
            assert (exc.type, exc.non_retryable) == (Refusal.BEING_SETTLED.value, True), exc
            return False

    cycle = await run_cycle(shop)
    # Every other order gets a refund racing the claim; the rest is surely claimed (so a statement exists).
    raced = orders[::2]
    opened = await asyncio.gather(*(open_refund(no) for no in raced))
    st = await eventually(lambda: _statement_in(shop, merchant_id, "PENDING_APPROVAL"), 30)
    lines = await lines_of(shop, orders)
    async with unit_of_work(shop.sessions) as session:
        with_refund = set((await session.execute(select(Refund.order_no).where(Refund.order_no.in_(orders)))).scalars())
    claimed = {no for no in orders if lines[no]}
    assert claimed >= set(orders[1::2]) and len(claimed) == st["order_count"]
    both = sorted(claimed & with_refund)
    assert not both, f"{len(both)} orders were claimed while a refund of theirs was open: {both[:5]}"
    assert with_refund == {no for no, ok in zip(raced, opened, strict=True) if ok}
    assert claimed | with_refund == set(orders)  # a refused refund means the order was in the cycle
    await stage_of(temporal, statement_workflow_id(st["id"]), "AWAITING_FINANCE_APPROVAL", within=30)
    r = await shop.api.post(f"/v1/settlements/{st['id']}/approve", json={}, headers=shop.as_(Role.FINANCE))
    assert r.status_code == 200 and r.json()["status"] == "APPROVED", r.text
    await cycle_reaches(shop, cycle["cycle_id"], "CLOSED")
    assert await orders_where(shop, sorted(claimed), work.settled()) == len(claimed)
    # the orders with a refund in flight were skipped, and wait out of the queue until their refund ends
    assert await orders_where(shop, sorted(with_refund), ~work.claimed(), ~QUEUED) == len(with_refund)
    assert await shop.balance(merchant_account(merchant_id, "available")) == len(claimed) * 5700


async def test_a_claim_is_its_line_alone_and_a_rejection_ends_it(shop, temporal):
    """Claiming writes lines, never the orders; a refund is refused while a line claims the order (the
    claim is read from the line) and admitted once finance has rejected the statement."""
    merchant_id, orders = await seeded(shop, 2, 600_000, captures=True)  # over the auto-approval threshold

    async def written_at() -> list[tuple[str, datetime]]:
        async with unit_of_work(shop.sessions) as session:
            q = select(Order.order_no, Order.updated_at).where(Order.order_no.in_(orders)).order_by(Order.order_no)
            return [(no, at) for no, at in await session.execute(q)]

    before = await written_at()
    cycle = await run_cycle(shop)
    st = await eventually(lambda: _statement_in(shop, merchant_id, "PENDING_APPROVAL"), 30)
    assert st["cycle_id"] == cycle["cycle_id"] and st["order_count"] == 2
    assert await written_at() == before  # no order row was written by the claim
    assert await orders_where(shop, orders, work.claimed(cycle["cycle_id"]), ~work.settled(), ~QUEUED) == 2
    assert all(v == [(cycle["cycle_id"], "PENDING_APPROVAL")] for v in (await lines_of(shop, orders)).values())
    refunds = RefundActivities(shop.sessions)

    try:
        await refunds.open(finance_refund(f"RC1{orders[0]}", orders[0], 1000, "claimed"))
        raise AssertionError("a refund of an order a line claims was admitted")
    except ApplicationError as exc:
        assert (exc.type, exc.non_retryable) == (Refusal.BEING_SETTLED.value, True), exc
        assert cycle["cycle_id"] in str(exc)
    await stage_of(temporal, statement_workflow_id(st["id"]), "AWAITING_FINANCE_APPROVAL", within=30)
    r = await shop.api.post(
        f"/v1/settlements/{st['id']}/reject", json={"reason": "recount"}, headers=shop.as_(Role.FINANCE)
    )
    assert r.status_code == 200 and r.json()["status"] == "REJECTED", r.text
    opened = await refunds.open(finance_refund(f"RC2{orders[0]}", orders[0], 1000, "claimed"))
    assert opened.status.value == "PROCESSING"
    async with unit_of_work(shop.sessions) as session:
        assert await work.settlement_of(session, orders[1]) == (None, False)
        # back in the queue, but over the auto-approval threshold: kept out of later tests' cycles (the
        # refunded order waits out of it until its refund ends)
        assert await unqueue(session, orders) == 1
    assert await orders_where(shop, orders[:1], ~work.claimed(), ~QUEUED) == 1


async def test_an_order_waits_out_of_the_queue_while_a_refund_of_it_is_in_flight(shop):
    """Opening a refund takes its order out of the settlement queue (a refused one leaves it there), so a
    cycle passes it by, and the after-sale window closing does not queue it either; the refund's end puts
    it back, and the next cycle settles it net of the refund."""
    merchant_id, [order_no] = await seeded(shop, 1, 1000, captures=True)
    refunds = RefundActivities(shop.sessions)
    try:
        await refunds.open(finance_refund(f"RX{order_no}", order_no, 1001, "more than was paid"))
        raise AssertionError("a refund of more than was paid was admitted")
    except ApplicationError as exc:
        assert exc.type == Refusal.REFUND_EXCEEDS_REFUNDABLE.value, exc
    assert await orders_where(shop, [order_no], QUEUED) == 1
    await refunds.open(finance_refund(f"RQ{order_no}", order_no, 300, "partly refunded"))
    assert await orders_where(shop, [order_no], ~QUEUED) == 1
    await OrderActivities(shop.sessions).mark_settleable(order_no)  # the window closing: still a refund
    assert await orders_where(shop, [order_no], ~QUEUED) == 1
    cycle = await run_cycle(shop)
    await cycle_reaches(shop, cycle["cycle_id"], "CLOSED")
    assert await orders_where(shop, [order_no], ~work.claimed(), ~QUEUED) == 1
    await refunds.complete(RefundCompletion(refund_no=f"RQ{order_no}"))
    assert await orders_where(shop, [order_no], ~work.claimed(), QUEUED) == 1
    nxt = await run_cycle(shop)
    await cycle_reaches(shop, nxt["cycle_id"], "CLOSED")
    assert await orders_where(shop, [order_no], work.claimed(nxt["cycle_id"]), work.settled(), ~QUEUED) == 1
    assert await shop.balance(merchant_account(merchant_id, "available")) == 665  # 700 less 5 % commission


async def test_a_claim_page_committing_after_aggregation_writes_nothing(shop):
    """A claim attempt that timed out but still runs (a zombie) must not add orders no statement covers."""
    _, orders = await seeded(shop, 3, 1000)
    cycle_id = f"ZT{secrets.token_hex(6).upper()}"
    async with unit_of_work(shop.sessions) as session:
        session.add(
            SettlementCycle(
                id=cycle_id,
                cutoff=datetime.now(UTC) + timedelta(microseconds=secrets.randbelow(999_999) + 1),
                status="RUNNING",
                triggered_by="test",
            )
        )
    async with unit_of_work(shop.sessions) as session:
        built = await work.aggregate(session, cycle_id)
    async with unit_of_work(shop.sessions) as session:
        assert await work.claim_page(session, cycle_id, 1000) == 0  # the zombie's page
    assert await orders_where(shop, orders, work.claimed(cycle_id)) == 0
    async with unit_of_work(shop.sessions) as session:
        assert (await work.aggregate(session, cycle_id)) == built  # idempotent
        problems, _ = await work.problems(session, cycle_id)
        assert problems == []
        # a line written behind the claim's back (its order still queued, in no statement) is caught
        # before anything is posted
        await session.execute(
            text(
                f"INSERT INTO settlement_lines ({sql.LINE_COLUMNS}) SELECT :c, {sql.LINE_VALUES} FROM orders o"
                f" {sql.SPLIT} WHERE o.order_no = :o"
            ),
            {"c": cycle_id, "o": orders[0]},
        )
        problems, _ = await work.problems(session, cycle_id)
        assert any("still queued" in p for p in problems) and any("no statement" in p for p in problems), problems
        cycle = await session.get(SettlementCycle, cycle_id)
        assert cycle is not None
        cycle.status = "FAILED"
        await work.release(session, cycle_id)
    assert await orders_where(shop, orders, ~work.claimed(), QUEUED) == 3


async def test_a_page_neither_claims_nor_locks_orders_another_cycle_claims(shop):
    """A cycle whose statements wait for finance keeps its orders claimed; the next cycle's pages walk past
    them without claiming them and without taking their row locks (a refund could otherwise wait on it)."""
    _, orders = await seeded(shop, 3, 1000)
    _, [free] = await seeded(shop, 1, 1000)
    cutoff = datetime.now(UTC) + timedelta(seconds=1)
    cycles = [f"ZL{secrets.token_hex(6).upper()}" for _ in range(2)]
    async with unit_of_work(shop.sessions) as session:
        for i, cycle_id in enumerate(cycles):
            session.add(
                SettlementCycle(
                    id=cycle_id, cutoff=cutoff + timedelta(microseconds=i + 1), status="RUNNING", triggered_by="t"
                )
            )
    try:
        async with unit_of_work(shop.sessions) as session:  # the first cycle claims the three orders only
            await unqueue(session, [free])
        first = work.Window()
        while True:
            async with unit_of_work(shop.sessions) as session:
                claimed = await work.claim_page(session, cycles[0], 500, first)
            if claimed < 500:
                break
        assert all(len(v) == 1 for v in (await lines_of(shop, orders)).values())
        async with unit_of_work(shop.sessions) as session:
            await session.execute(
                insert(SettlementQueued).from_select(
                    ["order_no", "settleable_at"],
                    select(Order.order_no, Order.settleable_at).where(Order.order_no == free),
                )
            )
        second = work.Window()
        claimed = 0
        while True:
            async with unit_of_work(shop.sessions) as session:
                n = await work.claim_page(session, cycles[1], 500, second)
                claimed += n
                async with unit_of_work(shop.sessions) as other:  # the page's transaction is still open
                    locked = (
                        await other.execute(
                            select(Order.order_no).where(Order.order_no.in_(orders)).with_for_update(nowait=True)
                        )
                    ).all()
                    assert len(locked) == 3
            if n < 500:
                break
        lines = await lines_of(shop, [*orders, free])
        assert {o: [c for c, _ in v] for o, v in lines.items()} == {
            **{o: [cycles[0]] for o in orders},
            free: [cycles[1]],
        }
    finally:  # the cycles never settle: their lines stop claiming, and the orders leave the queue
        async with unit_of_work(shop.sessions) as session:
            await session.execute(update(SettlementCycle).where(SettlementCycle.id.in_(cycles)).values(status="FAILED"))
            await unqueue(session, [*orders, free])


async def test_a_cycle_that_fails_its_checks_releases_its_claims_for_the_next_cycle(shop):
    merchant_id, orders = await seeded(shop, 3, 1000)
    _, [odd] = await seeded(shop, 1, 700)
    async with unit_of_work(shop.sessions) as session:
        # money in a currency escrow holds none of: the cycle cannot release it and must not post anything
        await session.execute(update(Order).where(Order.order_no == odd).values(currency="XTS"))
    cycle = await run_cycle(shop)
    failed = await cycle_reaches(shop, cycle["cycle_id"], "FAILED")
    assert "XTS" in failed["failure"] and "escrow" in failed["failure"]
    assert await orders_where(shop, [*orders, odd], ~work.claimed(), QUEUED) == 4
    [st] = await statements_of(shop, merchant_id)
    assert st["status"] == "REJECTED" and st["cycle_id"] == cycle["cycle_id"]
    assert await shop.balance(merchant_account(merchant_id, "available")) == 0
    async with unit_of_work(shop.sessions) as session:  # an operator takes the odd order out of settlement
        await unqueue(session, [odd])
    nxt = await run_cycle(shop)
    await cycle_reaches(shop, nxt["cycle_id"], "CLOSED")
    assert await orders_where(shop, orders, work.claimed(nxt["cycle_id"]), work.settled(), ~QUEUED) == 3
    assert await shop.balance(merchant_account(merchant_id, "available")) == 3 * 950


async def test_concurrent_cycles_never_settle_an_order_twice(shop):
    merchant_id, orders = await seeded(shop, 1500, 100)  # pages of 200: the cycles' claims interleave
    await asyncio.sleep(3.2)  # every cutoff below (now-2s at the earliest) is after the seeding
    now = datetime.now(UTC).replace(microsecond=0)
    cycles = await asyncio.gather(*(run_cycle(shop, now - timedelta(seconds=i)) for i in range(3)))
    assert len({c["cycle_id"] for c in cycles}) == 3
    for c in cycles:
        await cycle_reaches(shop, c["cycle_id"], "CLOSED", within=60)
    lines = await lines_of(shop, orders)
    assert all(len(v) == 1 and v[0][1] == "APPROVED" for v in lines.values()), [
        (k, v) for k, v in lines.items() if len(v) != 1
    ][:5]
    assert await orders_where(shop, orders, work.settled(), ~QUEUED) == 1500
    assert await shop.balance(merchant_account(merchant_id, "available")) == 1500 * 95


async def test_a_statement_that_cannot_be_posted_fails_alone_and_finance_rejects_it(shop, temporal):
    odd, odd_orders = await seeded(shop, 2, 1000, promoter_id="promo:42 推广", promoter_bps=200)
    fine, _ = await seeded(shop, 2, 1000)
    cycle = await run_cycle(shop)
    await eventually(lambda: _statement_in(shop, fine, "APPROVED"), 30)
    assert await shop.balance(merchant_account(fine, "available")) == 2 * 950
    bad = await eventually(lambda: _statement_in(shop, odd, "FAILED"), 30)
    assert "promo:42" in bad["failure"] and "chart of accounts" in bad["failure"]
    details = await stage_of(temporal, statement_workflow_id(bad["id"]), "POSTING_FAILED")
    assert "promo:42" in details and odd in details
    listed = await shop.api.get(
        "/v1/settlements", params={"status": "FAILED", "cycle_id": cycle["cycle_id"]}, headers=shop.as_(Role.FINANCE)
    )
    assert [st["id"] for st in listed.json()] == [bad["id"]], listed.text
    approve = await shop.api.post(f"/v1/settlements/{bad['id']}/approve", json={}, headers=shop.as_(Role.FINANCE))
    assert "only be rejected" in refused_with(approve, 409, "STATEMENT_FAILED")["detail"]
    r = await shop.api.post(
        f"/v1/settlements/{bad['id']}/reject", json={"reason": "bad promoter id"}, headers=shop.as_(Role.FINANCE)
    )
    assert r.status_code == 200 and r.json()["status"] == "REJECTED", r.text
    await cycle_reaches(shop, cycle["cycle_id"], "CLOSED")
    await temporal.get_workflow_handle(settlement_workflow_id(cycle["cycle_id"])).result()
    await record_history(temporal, statement_workflow_id(bad["id"]), "statement_posting_failed_rejected")
    await record_history(temporal, settlement_workflow_id(cycle["cycle_id"]), "settlement_cycle_v2_failed_statement")
    assert await orders_where(shop, odd_orders, ~work.claimed(), QUEUED) == 2
    assert await shop.balance(merchant_account(odd, "available")) == 0
    async with unit_of_work(shop.sessions) as session:  # keep the odd orders out of later tests' cycles
        await unqueue(session, odd_orders)


async def _statement_in(shop, merchant_id: str, status: str) -> dict | None:  # type: ignore[no-untyped-def,type-arg]
    sts = [s for s in await statements_of(shop, merchant_id) if s["status"] == status]
    return sts[0] if sts else None


async def test_a_cycle_starts_its_statement_children_in_bounded_runs(shop, temporal: Client):
    merchants = [(await seeded(shop, 1, 1000))[0] for _ in range(5)]
    await asyncio.sleep(1.05)
    cutoff = datetime.now(UTC).replace(microsecond=0)
    cycle_id = cycle_id_for(cutoff)
    terms = SettlementTerms(auto_approve_max_minor=0, remind_seconds=60, page_size=200, children_page=2)
    handle = await temporal.start_workflow(
        SettlementWorkflow.run,
        CycleInput(cutoff=cutoff, triggered_by="test", terms=terms),
        id=settlement_workflow_id(cycle_id),
        task_queue=MAIN,
    )
    sts = []
    for m in merchants:
        st = await eventually(lambda m=m: _statement_in(shop, m, "PENDING_APPROVAL"), 30)
        await stage_of(temporal, statement_workflow_id(st["id"]), "AWAITING_FINANCE_APPROVAL", within=30)
        sts.append(st)
    pending = await shop.api.get(
        "/v1/settlements",
        params={"cycle_id": cycle_id, "status": "PENDING_APPROVAL"},
        headers=shop.as_(Role.FINANCE),
    )
    for st in pending.json():  # leftovers of other tests in this cycle too
        await stage_of(temporal, statement_workflow_id(st["id"]), "AWAITING_FINANCE_APPROVAL", within=30)
        r = await shop.api.post(f"/v1/settlements/{st['id']}/approve", json={}, headers=shop.as_(Role.FINANCE))
        assert r.status_code == 200, r.text
    result = await handle.result()
    # Other tests' leftovers may share the cycle: count its own statements, and find this test's among them.
    r = await shop.api.get(
        "/v1/settlements", params={"cycle_id": cycle_id, "limit": 1000}, headers=shop.as_(Role.FINANCE)
    )
    assert r.status_code == 200, r.text
    in_cycle = r.json()
    assert (result.statements, result.auto_approved, result.approved) == (
        len(in_cycle),
        0,
        sum(st["status"] == "APPROVED" for st in in_cycle),
    )
    assert {st["id"] for st in sts} <= {st["id"] for st in in_cycle if st["status"] == "APPROVED"}
    # the first run started two children and continued as new
    first = temporal.get_workflow_handle(settlement_workflow_id(cycle_id), run_id=handle.result_run_id)
    events = [e async for e in first.fetch_history_events()]
    assert events[-1].event_type == EventType.EVENT_TYPE_WORKFLOW_EXECUTION_CONTINUED_AS_NEW
    started = [e for e in events if e.event_type == EventType.EVENT_TYPE_START_CHILD_WORKFLOW_EXECUTION_INITIATED]
    assert len(started) == 2
    for m in merchants:
        assert await shop.balance(merchant_account(m, "available")) == 950
    await record_history(temporal, settlement_workflow_id(cycle_id), "settlement_cycle_v2_continued_as_new")
