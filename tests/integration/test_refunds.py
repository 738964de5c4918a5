"""Refunds: after-sale requests, limits under concurrency, channel failures, manual transfers, crashes."""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

from sqlalchemy import func, select

from activities.refunds import RefundActivities
from db.api_keys import issue_key
from db.engine import unit_of_work
from db.models import AuditEvent, JournalEntry, JournalLine, LedgerAccount, Refund
from domain.access import Role
from domain.accounts import ESCROW, bank_payout
from domain.numbers import new_number
from domain.refunds import RefundCompletion, RefundInput, RefundOrigin, RefundTerms
from tests.support.sandbox_receiver import eventually
from tests.support.shop import bearer, record_history, refused_with, stage_of
from tests.support.two_channels import paid_through_two_channels
from workflows.client.asking import start_and_ask
from workflows.ids import refund_workflow_id
from workflows.refund import RefundWorkflow


async def delivered_order(shop, channel: str = "wechat") -> dict:  # type: ignore[no-untyped-def,type-arg]
    return await shop.delivered(await shop.merchant(), channel=channel)


async def refund_count(shop, *order_nos: str) -> int:  # type: ignore[no-untyped-def]
    """Refunds of these orders only: other tests' flows open refunds meanwhile (an accept timer...)."""
    async with unit_of_work(shop.sessions) as session:
        q = select(func.count()).select_from(Refund).where(Refund.order_no.in_(order_nos))
        return int((await session.execute(q)).scalar_one())


async def test_several_partial_after_sale_refunds_up_to_what_was_paid(shop):
    order = await delivered_order(shop)
    paid = order["paid_minor"]
    first = await shop.request_refund(order["order_no"], 1000)
    assert first.status_code == 202, first.text
    assert first.json()["status"] == "PROCESSING" and first.json()["refund_no"].startswith("RF")
    second = await shop.request_refund(order["order_no"], paid - 1000 - 1)
    assert second.status_code == 202, second.text
    too_much = await shop.request_refund(order["order_no"], 2)
    assert "exceeds what is refundable" in refused_with(too_much, 422, "REFUND_EXCEEDS_REFUNDABLE")["detail"]
    order = await shop.refunded(order["order_no"], paid - 1)
    assert sorted(
        r["amount_minor"] for r in await shop.channel_refunds("wechat", order["payments"][0]["payment_no"])
    ) == sorted([1000, paid - 1001])
    last = await shop.request_refund(order["order_no"], 1)
    assert last.status_code == 202
    await shop.refunded(order["order_no"], paid)
    refund = await shop.refund(first.json()["refund_no"])
    assert refund["status"] == "SUCCEEDED" and [a["status"] for a in refund["attempts"]] == ["REQUESTED", "SUCCEEDED"]


async def test_ten_concurrent_requests_never_refund_more_than_was_paid(shop):
    order = await delivered_order(shop, channel="alipay")
    paid = order["paid_minor"]  # 9000: 10 requests of 2000 ask for 20000
    answers = await asyncio.gather(*(shop.request_refund(order["order_no"], 2000) for _ in range(10)))
    accepted = [r for r in answers if r.status_code == 202]
    refused = [r for r in answers if r.status_code != 202]
    assert len(accepted) == paid // 2000
    for r in refused:
        assert "exceeds" in refused_with(r, 422, "REFUND_EXCEEDS_REFUNDABLE")["detail"]
    await shop.refunded(order["order_no"], 2000 * len(accepted))
    channel_total = sum(
        r["amount_minor"] for r in await shop.channel_refunds("alipay", order["payments"][0]["payment_no"])
    )
    assert channel_total == 2000 * len(accepted)


async def test_the_same_idempotency_key_creates_one_refund(shop):
    order = await delivered_order(shop)
    key = uuid.uuid4().hex
    a = await shop.request_refund(order["order_no"], 500, key=key)
    b = await shop.request_refund(order["order_no"], 500, key=key)
    assert a.status_code == b.status_code == 202 and a.json() == b.json()
    assert await refund_count(shop, order["order_no"]) == 1
    await shop.refunded(order["order_no"], 500)


async def test_refunds_that_cannot_be_made_are_4xx_and_change_nothing(shop):
    merchant_id = await shop.merchant()
    unpaid = await shop.placed(merchant_id)
    cancel = await shop.api.post(
        f"/v1/orders/{unpaid['order_no']}/cancel", json={"reason": "no"}, headers=shop.as_(Role.SERVICE)
    )
    assert cancel.status_code == 200
    delivered = await delivered_order(shop)
    paid_only = await shop.placed(merchant_id)
    await shop.pay(paid_only["payment"]["pay_url"])
    await shop.reaches(paid_only["order_no"], "AWAITING_MERCHANT")
    cases = [
        (unpaid["order_no"], 100, 409, "NOTHING_PAID", "no captured payment"),
        (delivered["order_no"], delivered["paid_minor"] + 1, 422, "REFUND_EXCEEDS_REFUNDABLE", "exceeds"),
        (paid_only["order_no"], 100, 409, "NOT_REFUNDABLE_NOW", "for delivered or completed orders"),
        ("ORDnothing", 100, 404, "ORDER_NOT_FOUND", "does not exist"),
    ]
    for order_no, amount, status, code, says in cases:
        r = await shop.request_refund(order_no, amount)
        assert says in refused_with(r, status, code)["detail"]
    for body in ({"amount_minor": 0, "reason": "x"}, {"amount_minor": -5, "reason": "x"}, {"amount_minor": 5}):
        r = await shop.api.post(
            f"/v1/orders/{delivered['order_no']}/refunds",
            json=body,
            headers={**shop.as_(Role.SERVICE), "Idempotency-Key": uuid.uuid4().hex},
        )
        refused_with(r, 422, "INVALID_REQUEST")
    refused_with(await shop.request_refund(delivered["order_no"], 100, role=Role.OPERATOR), 403, "FORBIDDEN")
    assert await refund_count(shop, unpaid["order_no"], delivered["order_no"], paid_only["order_no"], "ORDnothing") == 0
    assert (await shop.order(delivered["order_no"]))["refunded_minor"] == 0


async def test_a_transient_channel_failure_is_retried_until_it_succeeds(shop):
    order = await delivered_order(shop)
    await shop.faults("wechat", refund_failure="transient")
    r = await shop.request_refund(order["order_no"], 700)
    assert r.status_code == 202
    await asyncio.sleep(3)
    assert (await shop.refund(r.json()["refund_no"]))["status"] == "PROCESSING"
    assert await shop.channel_refunds("wechat", order["payments"][0]["payment_no"]) == []
    await shop.reset_faults()
    await shop.refunded(order["order_no"], 700, within=30)


async def test_a_permanent_failure_becomes_a_manual_transfer_that_another_person_approves(shop, temporal):
    async with unit_of_work(shop.sessions) as session:
        _, alice = await issue_key(session, role=Role.FINANCE, name="alice")
        _, bob = await issue_key(session, role=Role.FINANCE, name="bob")
    order = await delivered_order(shop)
    await shop.faults("wechat", refund_failure="permanent")
    r = await shop.request_refund(order["order_no"], 1500, as_key=alice, reason="damaged")
    refund_no = r.json()["refund_no"]

    async def pending() -> dict | None:  # type: ignore[type-arg]
        refund = await shop.refund(refund_no)
        return refund if refund["status"] == "MANUAL_PENDING" else None

    refund = await eventually(pending, 20)
    assert refund["failure_reason"] == "ACCOUNT_CLOSED"
    assert [a["status"] for a in refund["attempts"]] == ["REQUESTED", "FAILED", "ESCALATED"]
    details = await stage_of(temporal, refund_workflow_id(refund_no), "AWAITING_FINANCE_APPROVAL")
    assert refund_no in details and order["order_no"] in details and "ACCOUNT_CLOSED" in details
    await eventually(lambda: _reminded(temporal, refund_no), 10)

    # ...and an operator hunting stuck flows finds it, since it has waited past its reminder period.
    stuck = (await shop.api.get("/v1/ops/stuck", headers=shop.as_(Role.OPERATOR))).json()
    assert {(f["workflow_id"], f["stage"]) for f in stuck} >= {
        (refund_workflow_id(refund_no), "AWAITING_FINANCE_APPROVAL")
    }
    refused_with(await shop.api.get("/v1/ops/stuck", headers=shop.as_(Role.FINANCE)), 403, "FORBIDDEN")

    url = f"/v1/refunds/{refund_no}/manual-transfer/approve"
    own = await shop.api.post(url, json={"note": "mine"}, headers=bearer(alice))
    assert "cannot approve" in refused_with(own, 403, "SAME_PERSON")["detail"]
    refused_with(await shop.api.post(url, json={}, headers=shop.as_(Role.SERVICE)), 403, "FORBIDDEN")
    ok = await shop.api.post(url, json={"note": "paid by transfer"}, headers=bearer(bob))
    assert ok.status_code == 200, ok.text
    assert ok.json()["status"] == "MANUAL_PAID"
    await shop.refunded(order["order_no"], 1500)
    # The bank account's balance is shared with every other flow's payouts: the refund's own entry says it.
    assert await moves(shop, refund_no) == ("MANUAL_REFUND_PAID", {ESCROW: 1500, bank_payout("platform"): -1500})
    refund = await shop.refund(refund_no)
    assert (refund["status"], refund["approved_by"]) == ("MANUAL_PAID", "bob")
    again = await shop.api.post(url, json={}, headers=bearer(bob))
    refused_with(again, 409, "FLOW_NOT_RUNNING")
    async with unit_of_work(shop.sessions) as session:
        audit = (await session.execute(select(AuditEvent).where(AuditEvent.subject_id == refund_no))).scalars().all()
    assert [(a.action, a.actor.split(":")[1].split("#")[0]) for a in audit] == [
        ("refund.manual_transfer_approved", "bob")
    ]


async def _reminded(temporal, refund_no: str) -> bool:  # type: ignore[no-untyped-def]
    return "reminder" in await stage_of(temporal, refund_workflow_id(refund_no), "AWAITING_FINANCE_APPROVAL")


async def test_a_refund_survives_a_worker_crash_with_one_channel_refund_and_one_entry(shop):
    order = await delivered_order(shop)
    # The result comes by callback 3 s after the channel takes the refund; its query answers "no such
    # refund" meanwhile (polling finds nothing), so only the callback can complete it.
    await shop.faults("wechat", callback_delay_ms=3000, refund_query_missing=True)
    try:
        r = await shop.request_refund(order["order_no"], 900)
        refund_no = r.json()["refund_no"]
        await eventually(lambda: shop.channel_refunds("wechat", order["payments"][0]["payment_no"]), 10)
        shop.services.children["worker"].kill()
        await shop.callback_delivered(refund_no)  # the channel's result arrived while no worker ran
        assert not shop.services.children["worker"].alive
        shop.services.start("worker")
        await shop.refunded(order["order_no"], 900, within=40)
    finally:
        await shop.reset_faults()
    refunds = await shop.channel_refunds("wechat", order["payments"][0]["payment_no"])
    assert [(x["out_refund_no"], x["status"]) for x in refunds] == [(refund_no, "SUCCESS")]
    assert await shop.ledger_entries(refund_no) == 1


async def test_money_paid_twice_through_two_channels_is_refunded_once(shop):
    """The first channel timed out on create but had opened the order; the customer paid on both."""
    merchant_id = await shop.merchant()
    placed = await paid_through_two_channels(shop, merchant_id)
    payment_no, amount = placed["payment"]["payment_no"], placed["payable_minor"]
    order = await shop.reaches(placed["order_no"], "AWAITING_MERCHANT")
    assert order["paid_minor"] == amount

    async def duplicate_refunded() -> list | None:  # type: ignore[type-arg]
        refunds = (await shop.order(placed["order_no"]))["refunds"]
        return refunds if refunds and refunds[0]["status"] == "SUCCEEDED" else None

    refunds = await eventually(duplicate_refunded, 30)
    # Whichever payment the platform learned of first is the order's; the other one goes back.
    kept = order["payments"][0]["channel"]
    other = "alipay" if kept == "wechat" else "wechat"
    assert [(r["channel"], r["amount_minor"], r["origin"]) for r in refunds] == [(other, amount, "payment")]
    assert [r["status"] for r in await shop.channel_refunds(other, payment_no)] == ["SUCCESS"]
    assert await shop.channel_refunds(kept, payment_no) == []
    assert await shop.ledger_entries(payment_no, "PAYMENT_CAPTURED") == 2
    order = await shop.order(placed["order_no"])
    assert order["paid_minor"] == amount and order["refunded_minor"] == 0  # the order keeps its one payment


# ---- unknown is not failed --------------------------------------------------------------------


def statuses(refund: dict) -> list[str]:  # type: ignore[type-arg]
    return [a["status"] for a in refund["attempts"]]


async def refund_reaches(shop, refund_no: str, status: str, within: float = 30) -> dict:  # type: ignore[no-untyped-def,type-arg]
    async def check() -> dict | None:  # type: ignore[type-arg]
        refund = await shop.refund(refund_no)
        return refund if refund["status"] == status else None

    result: dict = await eventually(check, within)  # type: ignore[type-arg]
    return result


async def test_a_refund_still_processing_at_the_poll_deadline_is_polled_on_until_the_channel_answers(shop, temporal):
    """The poll window (2s here) passes while the channel still says PROCESSING and its callback is lost:
    the flow keeps polling instead of handing the refund to finance, and completes when the channel does."""
    order = await delivered_order(shop)
    await shop.faults("wechat", callback_delay_ms=5000, drop_callbacks=True)
    refund_no = new_number("RF")
    inp = RefundInput(
        refund_no=refund_no,
        order_no=order["order_no"],
        payment_no=order["payments"][0]["payment_no"],
        amount_minor=800,
        reason="late channel",
        origin=RefundOrigin.API,
        requested_by="test",
        terms=RefundTerms(
            poll_initial_seconds=1,
            poll_max_seconds=2,
            approval_remind_seconds=60,
            notify_url=f"{shop.services.api_url}/v1/callbacks",
            manual_bank="platform",
        ),
    )
    opened = await start_and_ask(
        temporal, RefundWorkflow.run, inp, refund_workflow_id(refund_no), RefundWorkflow.opened, "test refund"
    )
    assert opened.status == "PROCESSING"
    refund = await refund_reaches(shop, refund_no, "SUCCEEDED", within=40)
    assert statuses(refund) == ["REQUESTED", "SUCCEEDED"]  # never FAILED, never ESCALATED
    await shop.refunded(order["order_no"], 800)
    channel = await shop.channel_refunds("wechat", order["payments"][0]["payment_no"])
    assert [(r["out_refund_no"], r["status"]) for r in channel] == [(refund_no, "SUCCESS")]
    await temporal.get_workflow_handle(refund_workflow_id(refund_no)).result()
    await record_history(temporal, refund_workflow_id(refund_no), "refund_polled_past_deadline_succeeded")


async def test_a_create_refused_on_retry_after_it_landed_is_asked_about_and_completes(shop, temporal):
    order = await delivered_order(shop)
    await shop.faults("wechat", refund_retry_refused=True, callback_delay_ms=2000)
    r = await shop.request_refund(order["order_no"], 700)
    assert r.status_code == 202, r.text
    refund_no = r.json()["refund_no"]
    refund = await refund_reaches(shop, refund_no, "SUCCEEDED")
    assert statuses(refund) == ["REQUESTED", "REFUSED", "SUCCEEDED"]
    await shop.refunded(order["order_no"], 700)
    channel = await shop.channel_refunds("wechat", order["payments"][0]["payment_no"])
    assert [(x["out_refund_no"], x["status"]) for x in channel] == [(refund_no, "SUCCESS")]
    await temporal.get_workflow_handle(refund_workflow_id(refund_no)).result()
    await record_history(temporal, refund_workflow_id(refund_no), "refund_refused_retry_succeeded")


async def test_a_query_404_for_a_refund_the_channel_accepted_is_not_a_failure(shop):
    order = await delivered_order(shop)
    await shop.faults("wechat", refund_query_missing=True, callback_delay_ms=4000)
    r = await shop.request_refund(order["order_no"], 600)
    refund_no = r.json()["refund_no"]
    refund = await refund_reaches(shop, refund_no, "SUCCEEDED")
    assert statuses(refund) == ["REQUESTED", "SUCCEEDED"]
    await shop.refunded(order["order_no"], 600)


async def test_a_channel_success_while_finance_decides_cancels_the_manual_transfer(shop, temporal):
    """Refused on retry and unknown to the channel's (lagging) query: a definite failure by what we can
    see, so finance is asked. The channel then reports the refund made: it completes as the channel's,
    finance's approval is refused with the reason, and nothing is posted twice."""
    async with unit_of_work(shop.sessions) as session:
        _, carol = await issue_key(session, role=Role.FINANCE, name="carol")
    order = await delivered_order(shop)
    await shop.faults("wechat", refund_retry_refused=True, refund_query_missing=True, callback_delay_ms=6000)
    r = await shop.request_refund(order["order_no"], 1200)
    refund_no = r.json()["refund_no"]
    pending = await refund_reaches(shop, refund_no, "MANUAL_PENDING", within=20)
    assert statuses(pending) == ["REQUESTED", "REFUSED", "FAILED", "ESCALATED"]
    await stage_of(temporal, refund_workflow_id(refund_no), "AWAITING_FINANCE_APPROVAL")
    refund = await refund_reaches(shop, refund_no, "SUCCEEDED", within=30)
    assert statuses(refund)[-2:] == ["SUCCEEDED", "CANCELLED"]
    await shop.refunded(order["order_no"], 1200)
    url = f"/v1/refunds/{refund_no}/manual-transfer/approve"
    late = await shop.api.post(url, json={"note": "paid it"}, headers=bearer(carol))
    refused_with(late, 409, "ALREADY_REFUNDED")
    assert "made by the channel" in late.json()["detail"]
    # A manual completion arriving anyway (a retried activity, a race) changes nothing.
    await RefundActivities(shop.sessions).complete(
        RefundCompletion(refund_no=refund_no, manual=True, approved_by="carol", bank="platform")
    )
    assert (await shop.refund(refund_no))["status"] == "SUCCEEDED"
    assert await shop.ledger_entries(refund_no) == 1
    # Paid back through the channel only: nothing of it left through the bank.
    assert await moves(shop, refund_no) == (
        "REFUND_BEFORE_SETTLEMENT",
        {ESCROW: 1200, "channel:wechat:clearing": -1200},
    )
    assert (await shop.order(order["order_no"]))["refunded_minor"] == 1200
    await temporal.get_workflow_handle(refund_workflow_id(refund_no)).result()
    await record_history(temporal, refund_workflow_id(refund_no), "refund_channel_success_cancels_manual")


# ---- refunds after settlement: exact clawback ---------------------------------------------------


async def settled_order(shop, *, promoter_id: str, rate_bps: int, **overrides: Any) -> dict:  # type: ignore[no-untyped-def,type-arg]
    """An order of 9000 (unless `overrides` of the placement say otherwise) with a promoter, under a
    merchant rule of `rate_bps`, lived end to end and settled."""
    from tests.integration.test_settlement import cycle_reaches, run_cycle

    merchant_id = await shop.merchant()
    rule = {"scope": "merchant", "scope_value": merchant_id, "rate_bps": rate_bps, "valid_from": "2020-01-01T00:00:00Z"}
    r = await shop.api.post(
        "/v1/commission-rules", json=rule, headers={**shop.as_(Role.FINANCE), "Idempotency-Key": uuid.uuid4().hex}
    )
    assert r.status_code == 201, r.text
    # Paid through wechat: the tests set refund faults on that channel, and routing would pick either.
    placed = await shop.placed(merchant_id, promoter_id=promoter_id, channel="wechat", **overrides)
    await shop.pay(placed["payment"]["pay_url"])
    order = await shop.reaches(placed["order_no"], "AWAITING_MERCHANT")
    assert (await shop.accept(order)).status_code == 200
    provider = await shop.offered_provider(order["order_no"])
    for event in ("provider_accepted", "delivered"):
        assert (await shop.fulfil(order["order_no"], event, provider)).status_code == 200
    confirm = await shop.api.post(f"/v1/orders/{order['order_no']}/confirm", headers=shop.as_(Role.SERVICE))
    assert confirm.status_code == 200
    await shop.reaches(order["order_no"], "COMPLETED", within=20, settleable=True)
    cycle = await run_cycle(shop)
    await cycle_reaches(shop, cycle["cycle_id"], "CLOSED")
    return await shop.reaches(order["order_no"], "COMPLETED", settled=True)


async def moves(shop, refund_no: str) -> tuple[str, dict[str, int]]:  # type: ignore[no-untyped-def]
    """(tx code, signed amount per account: + debit, − credit) of the entry that posted a refund."""
    async with unit_of_work(shop.sessions) as session:
        rows = (
            await session.execute(
                select(JournalEntry.tx_code, LedgerAccount.code, JournalLine.side, JournalLine.amount_minor)
                .join(JournalLine, JournalLine.entry_id == JournalEntry.id)
                .join(LedgerAccount, LedgerAccount.id == JournalLine.account_id)
                .where(JournalEntry.reference == refund_no)
            )
        ).all()
    assert len({r[0] for r in rows}) == 1, rows
    out: dict[str, int] = {}
    for _, account, side, amount in rows:
        out[account] = out.get(account, 0) + (amount if side == "D" else -amount)
    return rows[0][0], out


async def test_partial_refunds_after_settlement_claw_back_exactly_what_each_party_was_settled(shop):
    promoter = f"p-{uuid.uuid4().hex[:8]}"
    order = await settled_order(shop, promoter_id=promoter, rate_bps=501)
    m = order["merchant_id"]
    assert order["paid_minor"] == 9000
    # settled: commission 9000 × 5.01% = 451, promoter 2% = 180, merchant 8369
    assert await shop.balance(f"merchant:{m}:available") == 8369
    assert await shop.balance(f"promoter:{promoter}:payable") == 180
    taken = {"commission": 0, "merchant": 0, "promoter": 0}
    for _ in range(2):
        r = await shop.request_refund(order["order_no"], 4500, role=Role.FINANCE, reason="half back")
        assert r.status_code == 202, r.text
        await refund_reaches(shop, r.json()["refund_no"], "SUCCEEDED")
        code, lines = await moves(shop, r.json()["refund_no"])
        assert code == "REFUND_AFTER_SETTLEMENT" and lines["channel:wechat:clearing"] == -4500
        assert ESCROW not in lines
        taken["commission"] += lines.get("platform:commission_revenue", 0)
        taken["merchant"] += lines.get(f"merchant:{m}:available", 0) + lines.get(f"merchant:{m}:clawback", 0)
        taken["promoter"] += lines.get(f"promoter:{promoter}:payable", 0)
    assert taken == {"commission": 451, "merchant": 8369, "promoter": 180}
    assert await shop.balance(f"merchant:{m}:available") == 0
    assert await shop.balance(f"merchant:{m}:clawback") == 0
    assert await shop.balance(f"promoter:{promoter}:payable") == 0
    assert (await shop.order(order["order_no"]))["refunded_minor"] == 9000


async def test_a_manual_refund_of_a_settled_order_is_clawed_back_not_paid_out_of_escrow(shop):
    async with unit_of_work(shop.sessions) as session:
        _, dave = await issue_key(session, role=Role.FINANCE, name="dave")
        _, erin = await issue_key(session, role=Role.FINANCE, name="erin")
    promoter = f"p-{uuid.uuid4().hex[:8]}"
    order = await settled_order(shop, promoter_id=promoter, rate_bps=500)
    m = order["merchant_id"]
    await shop.faults("wechat", refund_failure="permanent")
    r = await shop.request_refund(order["order_no"], 3000, as_key=dave, reason="account closed")
    assert r.status_code == 202, r.text
    refund_no = r.json()["refund_no"]
    await refund_reaches(shop, refund_no, "MANUAL_PENDING", within=20)
    ok = await shop.api.post(
        f"/v1/refunds/{refund_no}/manual-transfer/approve", json={"note": "wired"}, headers=bearer(erin)
    )
    assert ok.status_code == 200 and ok.json()["status"] == "MANUAL_PAID", ok.text
    code, lines = await moves(shop, refund_no)
    # settled 9000: commission 450, promoter 180, merchant 8370; a third of each comes back
    assert code == "MANUAL_REFUND_AFTER_SETTLEMENT"
    assert lines == {
        f"merchant:{m}:available": 2790,
        "platform:commission_revenue": 150,
        f"promoter:{promoter}:payable": 60,
        bank_payout("platform"): -3000,
    }
    assert await shop.balance(f"merchant:{m}:available") == 8370 - 2790
    assert await shop.balance(f"promoter:{promoter}:payable") == 120
    assert (await shop.order(order["order_no"]))["refunded_minor"] == 3000
