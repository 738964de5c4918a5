"""Discrepancy flows end to end: the sandbox's statement knobs make a party's records part from the
platform's, a reconciliation run through the API finds the difference, and the discrepancy's flow acts
through the real flows (or waits for finance), with what the sandbox saw and the ledger checked after
each (the autouse ledger fixture checks the invariants after every test).

The stack's SHORT hold is 20 s (tests/support/stack.py), so a SHORT past its hold reaches finance in
the test's time."""

from __future__ import annotations

import csv
import io
import json
import os
import re
from datetime import date
from pathlib import Path
from typing import Any

from sqlalchemy import func, select

from db.engine import unit_of_work
from db.models.recon import ReconRun
from domain.access import Role
from domain.recon.lines import SHANGHAI
from tests.integration.test_recon import discrepancies_of, paid, payments_and_refunds, run_recon
from tests.integration.test_recon_statements import paid_and_delivered, signed_get
from tests.support.sandbox_receiver import eventually
from tests.support.shop import Shop, bearer, second_finance_person
from workflows.discrepancy import DiscrepancyWorkflow
from workflows.ids import discrepancy_workflow_id

HISTORIES = Path(__file__).resolve().parent.parent / "histories"


async def keep(temporal: Any, workflow_id: str, name: str) -> None:
    """Keep a finished flow's history (BACKOFFICE_RECORD_HISTORIES=1) without this machine's paths."""
    if os.environ.get("BACKOFFICE_RECORD_HISTORIES") != "1":
        return
    await temporal.get_workflow_handle(workflow_id).result()
    text = json.dumps(json.loads((await temporal.get_workflow_handle(workflow_id).fetch_history()).to_json()), indent=2)
    text = re.sub(r'"stackTrace": "(?:[^"\\]|\\.)*"', '"stackTrace": ""', text)
    assert not re.search(r"/(work|tmp|root|home)/", text), "a machine path in the history"
    (HISTORIES / f"{name}.json").write_text(text)


async def discrepancy(shop: Shop, type_: str, our_no: str, source: str = "wechat") -> dict[str, Any]:
    found = await discrepancies_of(shop, source, {our_no})
    return found[(type_, our_no)]


async def reaches(shop: Shop, discrepancy_id: int, status: str, within: float = 40) -> dict[str, Any]:
    async def check() -> dict[str, Any] | None:
        r = await shop.api.get(f"/v1/recon/discrepancies/{discrepancy_id}", headers=shop.as_(Role.OPERATOR))
        assert r.status_code == 200, r.text
        return r.json() if r.json()["status"] == status else None

    got: dict[str, Any] = await eventually(check, within)
    return got


async def captured(shop: Shop, order_no: str) -> None:
    """Waits until the platform has captured the order's payment (the callback arrives a moment later)."""

    async def check() -> bool | None:
        return (await shop.order(order_no))["paid_minor"] > 0 or None

    await eventually(check, 20)


async def day_of(shop: Shop, order_no: str) -> tuple[str, date]:
    pays, _ = await payments_and_refunds(shop, [order_no])
    p = pays[order_no]
    when = p.paid_at or p.created_at
    return p.payment_no, when.astimezone(SHANGHAI).date()


async def test_a_long_payment_of_an_order_still_waiting_is_captured_and_the_order_goes_on(
    shop: Shop, temporal: Any
) -> None:
    m = await shop.merchant()
    order_no = await paid(shop, m, "wechat", hide_payment=True)  # paid; the platform never hears of it
    payment_no, day = await day_of(shop, order_no)
    assert (await shop.order(order_no))["status"] == "AWAITING_PAYMENT"
    await run_recon(shop, temporal, "wechat", day)  # within the payment's deadline (8 s on this stack)
    d = await discrepancy(shop, "LONG", payment_no)
    done = await reaches(shop, d["id"], "RESOLVED")
    assert done["action"] == "CAPTURE" and [h["status"] for h in done["history"]] == ["ACTING", "RESOLVED"]
    order = await shop.order(order_no)
    assert order["paid_minor"] == order["payable_minor"] > 0, order
    assert order["status"] in ("AWAITING_MERCHANT", "CANCELLED", "DISPATCHING"), order  # it went on
    assert await shop.ledger_entries(payment_no, "PAYMENT_CAPTURED") == 1


async def test_a_long_payment_of_a_cancelled_order_is_refunded_at_the_channel_once(shop: Shop, temporal: Any) -> None:
    m = await shop.merchant()
    order_no = await paid(shop, m, "wechat", hide_payment=True)
    payment_no, day = await day_of(shop, order_no)
    order = await shop.reaches(order_no, "CANCELLED", within=30)  # the deadline passed; the close said unpaid
    assert order["paid_minor"] == 0
    run = await run_recon(shop, temporal, "wechat", day)
    d = await discrepancy(shop, "LONG", payment_no)
    assert d["run_id"] == run["run_id"]
    done = await reaches(shop, d["id"], "RESOLVED", within=60)
    assert done["action"] == "CAPTURE_AND_REFUND", done
    at_channel = await shop.channel_refunds("wechat", payment_no)
    assert [(x["amount_minor"], x["status"]) for x in at_channel] == [(order["payable_minor"], "SUCCESS")]
    await shop.refunded(order_no, order["payable_minor"])
    await keep(temporal, discrepancy_workflow_id(d["id"]), "discrepancy_long_cancelled_refunded")
    await keep(temporal, f"recon-wechat-{day}", "recon_day_started_discrepancy_flows")

    # A re-run of the day changes nothing: no new discrepancy, no second flow, no second refund.
    again = await run_recon(shop, temporal, "wechat", day)
    assert again["run_id"] != run["run_id"]
    assert (await discrepancy(shop, "LONG", payment_no))["run_id"] == run["run_id"]
    flows = [x async for x in temporal.list_workflows(f"WorkflowId = 'discrepancy-{d['id']}'")]
    assert len(flows) == 1
    assert len(await shop.channel_refunds("wechat", payment_no)) == 1
    fees = await shop.ledger_entries(f"recon-wechat-{day}", "CHANNEL_FEE")
    assert fees == 1  # the day's fees booked once however often the day is run


async def test_a_refund_stuck_processing_is_completed_as_the_statement_says(shop: Shop, temporal: Any) -> None:
    m = await shop.merchant()
    order_no = await paid_and_delivered(shop, m, "wechat", 12_300)
    await shop.faults("wechat", refund_stuck_processing=True)
    try:
        r = await shop.request_refund(order_no, 2_300)
        assert r.status_code == 202, r.text
        refund_no = r.json()["refund_no"]
        payment_no, day = await day_of(shop, order_no)

        async def at_channel() -> bool | None:
            found = await shop.channel_refunds("wechat", payment_no)
            return any(x["out_refund_no"] == refund_no and x["status"] == "SUCCESS" for x in found) or None

        await eventually(at_channel, 20)
    finally:
        await shop.reset_faults()
    assert (await shop.refund(refund_no))["status"] == "PROCESSING"
    await run_recon(shop, temporal, "wechat", day)
    d = await discrepancy(shop, "STATUS_MISMATCH", refund_no)
    done = await reaches(shop, d["id"], "RESOLVED")
    assert done["action"] == "COMPLETE_REFUND"
    assert (await shop.refund(refund_no))["status"] == "SUCCEEDED"
    await shop.refunded(order_no, 2_300)


async def test_a_short_past_its_hold_waits_for_finance_and_a_write_off_takes_two_people(
    shop: Shop, temporal: Any
) -> None:
    m = await shop.merchant()
    order_no = await paid(shop, m, "alipay", bill_next_day=True)  # on the next day's bill, never run here
    await captured(shop, order_no)
    payment_no, day = await day_of(shop, order_no)
    # A day whose only payment moved to the next bill has no bill at all ("No Bill Exist": the run ends
    # EMPTY and classifies nothing), so the day gets an ordinary payment too.
    await captured(shop, await paid(shop, m, "alipay"))
    await run_recon(shop, temporal, "alipay", day)
    d = await discrepancy(shop, "SHORT", payment_no, "alipay")
    assert d["status"] == "HELD"
    suspense = await shop.balance("platform:suspense")
    waiting = await reaches(shop, d["id"], "AWAITING_FINANCE", within=40)
    amount = waiting["platform_minor"]
    # Parked: the clearing shows what the statement shows, the difference waits in suspense.
    assert await shop.balance("platform:suspense") - suspense == amount
    assert await shop.ledger_entries(f"discrepancy-{d['id']}", "RECON_SUSPENSE") == 1  # out of alipay's clearing

    url = f"/v1/recon/discrepancies/{d['id']}"
    wrong = await shop.api.post(f"{url}/resolve", json={"action": "complete_order", "reason": "x"},
                                headers=shop.as_(Role.FINANCE))  # fmt: skip
    assert (wrong.status_code, wrong.json()["code"]) == (409, "ACTION_NOT_APPLICABLE")
    assert (await shop.api.post(f"{url}/resolve", json={"action": "write_off", "reason": "x"},
                                headers=shop.as_(Role.OPERATOR))).status_code == 403  # fmt: skip
    body = {"action": "write_off", "reason": "the channel never had it"}
    proposed = await shop.api.post(f"{url}/resolve", json=body, headers=shop.as_(Role.FINANCE))
    assert proposed.status_code == 200, proposed.text
    assert proposed.json()["status"] == "AWAITING_APPROVAL"
    same = await shop.api.post(f"{url}/approve", json={}, headers=shop.as_(Role.FINANCE))
    assert (same.status_code, same.json()["code"]) == (403, "SAME_PERSON")
    assert await shop.balance("platform:suspense") - suspense == amount  # nothing moved
    other = await second_finance_person(shop)
    approved = await shop.api.post(f"{url}/approve", json={"note": "checked"}, headers=bearer(other))
    assert approved.status_code == 200, approved.text
    assert approved.json()["status"] == "RESOLVED"
    assert await shop.balance("platform:suspense") == suspense
    assert await shop.ledger_entries(f"discrepancy-{d['id']}", "RECON_ADJUST") == 1
    again = await shop.api.post(f"{url}/approve", json={}, headers=bearer(other))
    assert again.status_code == 409
    final = await reaches(shop, d["id"], "RESOLVED")
    assert final["action"] == "write_off" and final["decided_by"]
    await keep(temporal, discrepancy_workflow_id(d["id"]), "discrepancy_short_past_hold_written_off")


async def test_a_short_is_resolved_by_the_next_days_statement(shop: Shop, temporal: Any) -> None:
    m = await shop.merchant()
    order_no = await paid(shop, m, "wechat", bill_next_day=True)
    await captured(shop, order_no)
    payment_no, day = await day_of(shop, order_no)
    await run_recon(shop, temporal, "wechat", day)
    d = await discrepancy(shop, "SHORT", payment_no)
    assert d["status"] == "HELD"
    next_day = await run_recon(shop, temporal, "wechat", day.fromordinal(day.toordinal() + 1))
    done = await reaches(shop, d["id"], "RESOLVED", within=15)
    assert done["resolved_by_run_id"] == next_day["run_id"]
    r = await shop.api.get(f"/v1/recon/discrepancies/{d['id']}", headers=shop.as_(Role.FINANCE))
    assert r.json()["workflow_id"] == discrepancy_workflow_id(d["id"])
    result = await temporal.get_workflow_handle_for(DiscrepancyWorkflow.run, discrepancy_workflow_id(d["id"])).result()
    assert result.status == "RESOLVED"


async def test_an_amount_mismatch_is_adjusted_by_two_people_and_exported_as_csv(shop: Shop, temporal: Any) -> None:
    m = await shop.merchant()
    order_no = await paid(shop, m, "wechat", bill_amount_delta_minor=100)
    await captured(shop, order_no)
    payment_no, day = await day_of(shop, order_no)
    run = await run_recon(shop, temporal, "wechat", day)
    d = await discrepancy(shop, "AMOUNT_MISMATCH", payment_no)
    await reaches(shop, d["id"], "AWAITING_FINANCE")
    url = f"/v1/recon/discrepancies/{d['id']}"
    body = {"action": "adjust", "reason": "the channel's amount stands"}
    assert (await shop.api.post(f"{url}/resolve", json=body, headers=shop.as_(Role.FINANCE))).status_code == 200
    twice = await shop.api.post(f"{url}/resolve", json=body, headers=shop.as_(Role.FINANCE))
    assert (twice.status_code, twice.json()["code"]) == (409, "NOT_AWAITING_FINANCE")
    other = await second_finance_person(shop)
    assert (await shop.api.post(f"{url}/approve", json={}, headers=bearer(other))).status_code == 200
    assert await shop.balance("platform:recon_adjustments") <= -100  # the channel had 100 more

    r = await shop.api.get(
        "/v1/recon/discrepancies", params={"run_id": run["run_id"], "format": "csv"}, headers=shop.as_(Role.FINANCE)
    )
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/csv")
    rows = list(csv.DictReader(io.StringIO(r.text)))
    mine = [x for x in rows if x["our_no"] == payment_no]
    assert [(x["type"], x["statement_minor"], x["platform_minor"], x["status"], x["action"]) for x in mine] == [
        ("AMOUNT_MISMATCH", str(d["statement_minor"]), str(d["platform_minor"]), "RESOLVED", "adjust")
    ]
    missing = await shop.api.get("/v1/recon/discrepancies/999999999", headers=shop.as_(Role.FINANCE))
    assert (missing.status_code, missing.json()["code"]) == (404, "DISCREPANCY_NOT_FOUND")


async def test_an_uploaded_statement_file_twice_is_the_same_run(shop: Shop, temporal: Any) -> None:
    m = await shop.merchant()
    order_no = await paid_and_delivered(shop, m, "wechat", 4_560)
    _, day = await day_of(shop, order_no)
    bill = await signed_get(shop, "wechat", f"/wechat/v3/bill/tradebill?bill_date={day}&bill_type=ALL")
    assert bill.status_code == 200, bill.text
    content = (await signed_get(shop, "wechat", bill.json()["download_url"])).content
    form = {"source": "wechat", "bill_date": str(day)}
    files = {"file": ("bill.csv", content, "text/csv")}
    first = await shop.api.post("/v1/recon/runs", data=form, files=files, headers=shop.as_(Role.FINANCE))
    assert first.status_code == 202, first.text
    await temporal.get_workflow_handle(first.json()["workflow_id"]).result()
    second = await shop.api.post("/v1/recon/runs", data=form, files=files, headers=shop.as_(Role.FINANCE))
    assert second.status_code == 202 and second.json() == first.json()
    async with unit_of_work(shop.sessions) as session:
        n = (await session.execute(select(func.count()).where(ReconRun.id == first.json()["run_id"]))).scalar_one()
    assert n == 1
    empty = await shop.api.post(
        "/v1/recon/runs", data=form, files={"file": ("bill.csv", b"", "text/csv")}, headers=shop.as_(Role.FINANCE)
    )
    assert (empty.status_code, empty.json()["code"]) == (422, "EMPTY_FILE")
    no_file = await shop.api.post(
        "/v1/recon/runs", data=form, files={"other": ("x", b"x")}, headers=shop.as_(Role.FINANCE)
    )
    assert no_file.status_code == 422
