"""Payouts: unknown is not failed. A refused or unanswered submit, a restarted batcher and results that
come after UNKNOWN are all settled by asking the bank, and money moves once, as the bank did."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from domain.access import Role
from domain.withdrawals import BatcherInput, OpenBatch
from tests.integration.test_withdrawals import available, bank, bank_payouts, entries, withdrawing
from tests.support.sandbox_receiver import eventually
from tests.support.shop import (
    payee,
    record_history,
    refused_with,
    resolve_payout,
    second_finance_person,
    withdraw,
    withdrawal,
    withdrawal_reaches,
)
from workflows.client.queues import MAIN
from workflows.ids import PAYOUT_BATCHER_WORKFLOW_ID, withdrawal_workflow_id
from workflows.payout_batch import PayoutBatchWorkflow

FINAL = ("PAID", "FAILED")


async def settled(shop, wid: str, within: float = 40) -> dict[str, Any]:  # type: ignore[no-untyped-def]
    """The withdrawal once it is PAID or FAILED (whichever: the test then says which it must be)."""

    async def check() -> dict[str, Any] | None:
        w = await withdrawal(shop, wid)
        return w if w["status"] in FINAL else None

    found: dict[str, Any] = await eventually(check, within)
    return found


async def at_bank(shop, wid: str) -> dict[str, Any]:  # type: ignore[no-untyped-def]
    async def check() -> dict[str, Any] | None:
        return next((p for p in await bank_payouts(shop) if p["payout_no"] == wid), None)

    found: dict[str, Any] = await eventually(check, 20)
    return found


async def test_a_refused_resubmit_after_the_batch_landed_pays_once_and_never_unfreezes(shop):
    m = await payee(shop, 60_000)
    # The bank records the batch but its answer is lost; the retry is refused as a duplicate batch (409).
    await bank(shop, payout_answer_lost=True, payout_resubmit_refused=True)
    try:
        wid = (await withdraw(shop, m, 25_000)).json()["withdrawal_id"]
        done = await settled(shop, wid)
    finally:
        await shop.outside.delete("/_sandbox/faults/bank")
    paid_at_bank = await at_bank(shop, wid)
    assert paid_at_bank["status"] == "PAID" and paid_at_bank["submit_calls"] == 1, paid_at_bank
    assert done["status"] == "PAID", done
    assert done["bank_ref"] == paid_at_bank["bank_ref"]
    assert await entries(shop, wid, "WITHDRAWAL_PAID") == 1
    assert await entries(shop, wid, "WITHDRAWAL_FAILED") == 0
    assert await shop.balance(available(m)) == 35_000
    assert await shop.balance(withdrawing(m)) == 0


async def test_a_restarted_batcher_follows_the_batch_at_the_bank_to_its_result(shop, temporal):
    m = await payee(shop, 50_000)
    other = await payee(shop, 10_000)
    # Results come 6 s after the bank takes the batch; a resubmit of a known batch would be refused.
    await bank(shop, callback_delay_ms=6000, payout_resubmit_refused=True)
    try:
        wid = (await withdraw(shop, m, 20_000)).json()["withdrawal_id"]
        await withdrawal_reaches(shop, wid, "SUBMITTED")
        await at_bank(shop, wid)
        await temporal.get_workflow_handle(PAYOUT_BATCHER_WORKFLOW_ID).terminate(reason="test: batcher lost")
        # The next withdrawal starts a fresh batcher (no batches carried over): it must rebuild them.
        later = (await withdraw(shop, other, 5_000)).json()["withdrawal_id"]
        done = await settled(shop, wid)
        assert (await settled(shop, later))["status"] == "PAID"
    finally:
        await shop.outside.delete("/_sandbox/faults/bank")
    assert done["status"] == "PAID", done
    assert await entries(shop, wid, "WITHDRAWAL_PAID") == 1
    assert await shop.balance(withdrawing(m)) == 0
    assert await shop.balance(available(m)) == 30_000
    await record_history(temporal, PAYOUT_BATCHER_WORKFLOW_ID, "payout_batch_rebuilt_after_restart")


async def test_a_bank_result_after_unknown_resolves_the_withdrawal_once(shop, temporal):
    m = await payee(shop, 40_000)
    n = await payee(shop, 40_000)
    await bank(shop, payout_failure="unknown", duplicate_callbacks=True)
    try:
        paid = (await withdraw(shop, m, 15_000)).json()["withdrawal_id"]
        failed = (await withdraw(shop, n, 12_000)).json()["withdrawal_id"]
        await withdrawal_reaches(shop, paid, "UNKNOWN", within=30)
        await withdrawal_reaches(shop, failed, "UNKNOWN", within=30)
    finally:
        await shop.outside.delete("/_sandbox/faults/bank")
    # The bank answers at last, by callback (twice each).
    ok = await shop.outside.post(f"/_sandbox/bank/payouts/{paid}/settle", json={"status": "PAID"})
    no = await shop.outside.post(
        f"/_sandbox/bank/payouts/{failed}/settle", json={"status": "FAILED", "failure_reason": "ACCOUNT_FROZEN: x"}
    )
    assert ok.status_code == no.status_code == 200, (ok.text, no.text)
    done, undone = await settled(shop, paid), await settled(shop, failed)
    assert (done["status"], done["bank_ref"], done["resolved_by"]) == ("PAID", ok.json()["bank_ref"], None)
    assert (undone["status"], undone["failure_reason"]) == ("FAILED", "ACCOUNT_FROZEN: x")
    assert await entries(shop, paid, "WITHDRAWAL_PAID") == 1 and await entries(shop, paid, "WITHDRAWAL_FAILED") == 0
    assert await entries(shop, failed, "WITHDRAWAL_FAILED") == 1 and await entries(shop, failed, "WITHDRAWAL_PAID") == 0
    assert (await shop.balance(available(m)), await shop.balance(withdrawing(m))) == (25_000, 0)
    assert (await shop.balance(available(n)), await shop.balance(withdrawing(n))) == (40_000, 0)
    # Finance can no longer resolve what the bank has answered.
    again = await shop.api.post(
        f"/v1/withdrawals/{paid}/resolve", json={"outcome": "FAILED", "reason": "x"}, headers=shop.as_(Role.FINANCE)
    )
    refused_with(again, 409, "FLOW_NOT_RUNNING")
    await record_history(temporal, withdrawal_workflow_id(paid), "withdrawal_unknown_then_paid_by_the_bank")


async def test_a_late_bank_result_that_contradicts_finance_is_surfaced_and_moves_no_money(shop, temporal):
    m = await payee(shop, 40_000)
    await bank(shop, payout_failure="unknown")
    try:
        wid = (await withdraw(shop, m, 15_000)).json()["withdrawal_id"]
        await withdrawal_reaches(shop, wid, "UNKNOWN", within=30)
    finally:
        await shop.outside.delete("/_sandbox/faults/bank")
    body = {"outcome": "PAID", "reason": "the bank's phone line said so", "bank_ref": "phone-1"}
    r = await resolve_payout(shop, wid, body, shop.keys[Role.FINANCE], await second_finance_person(shop))
    assert r.status_code == 200 and r.json()["status"] == "PAID", r.text
    # ...then the bank's own result says the transfer failed.
    late = await shop.outside.post(
        f"/_sandbox/bank/payouts/{wid}/settle", json={"status": "FAILED", "failure_reason": "NAME_MISMATCH: y"}
    )
    assert late.status_code == 200, late.text

    async def surfaced() -> dict[str, Any] | None:
        w = await withdrawal(shop, wid)
        return w if w["bank_conflict"] else None

    w = await eventually(surfaced, 30)
    assert w["status"] == "PAID" and "FAILED" in w["bank_conflict"] and "NAME_MISMATCH" in w["bank_conflict"]
    assert await entries(shop, wid, "WITHDRAWAL_PAID") == 1 and await entries(shop, wid, "WITHDRAWAL_FAILED") == 0
    assert (await shop.balance(available(m)), await shop.balance(withdrawing(m))) == (25_000, 0)
    listed = await shop.api.get("/v1/withdrawals", params={"conflict": "true"}, headers=shop.as_(Role.FINANCE))
    assert listed.status_code == 200 and wid in [x["withdrawal_id"] for x in listed.json()], listed.text
    # The batcher compared the late result with the finished withdrawal: keep that branch for replay.
    await record_history(temporal, PAYOUT_BATCHER_WORKFLOW_ID, "payout_batch_late_result_compared")


async def test_a_batch_carried_over_continue_as_new_is_asked_about_not_refused_into_failure(shop, temporal):
    """What a new run of the batcher gets after continue-as-new, made by hand: the batch in its input."""
    m = await payee(shop, 50_000)
    await bank(shop, callback_delay_ms=5000, payout_resubmit_refused=True)
    try:
        wid = (await withdraw(shop, m, 20_000)).json()["withdrawal_id"]
        batch_id = (await withdrawal_reaches(shop, wid, "SUBMITTED"))["batch"]["batch_id"]
        await at_bank(shop, wid)
        handle = temporal.get_workflow_handle(PAYOUT_BATCHER_WORKFLOW_ID)
        started = (await handle.fetch_history()).events[0].workflow_execution_started_event_attributes
        [previous] = await temporal.data_converter.decode(started.input.payloads, [BatcherInput])
        await handle.terminate(reason="test: the next run takes over")
        carried = OpenBatch(batch_id=batch_id, withdrawal_ids=[wid], opened_at=datetime.now(UTC))
        await temporal.start_workflow(
            PayoutBatchWorkflow.run,
            BatcherInput(terms=previous.terms, open_batches=[carried], batches_so_far=previous.batches_so_far),
            id=PAYOUT_BATCHER_WORKFLOW_ID,
            task_queue=MAIN,
        )
        done = await settled(shop, wid)
    finally:
        await shop.outside.delete("/_sandbox/faults/bank")
    assert done["status"] == "PAID", done
    assert (await at_bank(shop, wid))["submit_calls"] == 1  # asked about, never resubmitted
    assert await entries(shop, wid, "WITHDRAWAL_PAID") == 1 and await entries(shop, wid, "WITHDRAWAL_FAILED") == 0
    assert (await shop.balance(available(m)), await shop.balance(withdrawing(m))) == (30_000, 0)
