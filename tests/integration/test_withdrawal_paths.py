"""Withdrawals off the happy path: the daily limit, a bank that is down or answers late, forged and
repeated bank callbacks, and batches that may not grow past their limit."""

from __future__ import annotations

import asyncio
import json
import uuid
from typing import Any

from sqlalchemy import text

from db.engine import unit_of_work
from domain.access import Role
from domain.signing import signed_headers
from tests.integration.test_callbacks import signed
from tests.integration.test_withdrawals import available, bank, bank_payouts, entries, withdrawing
from tests.support.sandbox_receiver import eventually
from tests.support.shop import (
    Shop,
    payee,
    resolve_payout,
    second_finance_person,
    withdraw,
    withdrawal,
    withdrawal_reaches,
)

BATCH_MAX_ITEMS = 50  # BACKOFFICE_PAYOUT_BATCH_MAX_ITEMS of the test stack


async def no_bank_faults(shop: Shop) -> None:
    assert (await shop.outside.delete("/_sandbox/faults/bank")).status_code == 200


async def test_the_daily_limit_counts_neither_rejected_nor_failed_withdrawals(shop):
    # Limit 20,000,000 a day; from 5,000,000 up finance approves.
    m = await payee(shop, 30_000_000)
    rejected = (await withdraw(shop, m, 6_000_000)).json()["withdrawal_id"]
    await withdrawal_reaches(shop, rejected, "PENDING_APPROVAL")
    r = await shop.api.post(
        f"/v1/withdrawals/{rejected}/reject", json={"reason": "not today"}, headers=shop.as_(Role.FINANCE)
    )
    assert r.status_code == 200 and r.json()["status"] == "REJECTED", r.text
    await bank(shop, payout_failure="permanent")
    try:
        failed = (await withdraw(shop, m, 4_000_000)).json()["withdrawal_id"]
        await withdrawal_reaches(shop, failed, "FAILED")
    finally:
        await no_bank_faults(shop)
    assert await shop.balance(available(m)) == 30_000_000  # both came back

    # 10,000,000 rejected or failed today does not count: 4,900,000 + 15,000,000 fit under the limit...
    paid = await withdraw(shop, m, 4_900_000)
    assert paid.status_code == 202, paid.text
    big = await withdraw(shop, m, 15_000_000)
    assert big.status_code == 202 and big.json()["status"] == "PENDING_APPROVAL", big.text
    # ...and what does count still stops the next one, to the unit.
    over = await withdraw(shop, m, 100_001)
    assert (over.status_code, over.json()["code"]) == (422, "DAILY_LIMIT_EXCEEDED"), over.text
    assert "19900000 already requested today" in over.json()["detail"]
    exact = await withdraw(shop, m, 100_000)
    assert exact.status_code == 202, exact.text
    await withdrawal_reaches(shop, paid.json()["withdrawal_id"], "PAID")
    await withdrawal_reaches(shop, exact.json()["withdrawal_id"], "PAID")
    assert await shop.balance(available(m)) == 30_000_000 - 20_000_000
    assert await shop.balance(withdrawing(m)) == 15_000_000
    done = await shop.api.post(
        f"/v1/withdrawals/{big.json()['withdrawal_id']}/reject", json={"reason": "x"}, headers=shop.as_(Role.FINANCE)
    )
    assert done.status_code == 200, done.text
    assert (await shop.balance(available(m)), await shop.balance(withdrawing(m))) == (25_000_000, 0)
    assert await entries(shop, rejected, "WITHDRAWAL_PAID") == await entries(shop, failed, "WITHDRAWAL_PAID") == 0


async def test_a_bank_down_at_submission_is_tried_again_and_pays_once(shop):
    m = await payee(shop, 70_000)
    await bank(shop, down=True)
    try:
        wid = (await withdraw(shop, m, 45_000)).json()["withdrawal_id"]
        held = await withdrawal_reaches(shop, wid, "SUBMITTED")
        assert held["batch"]["batch_id"]
        assert [p for p in await bank_payouts(shop) if p["payout_no"] == wid] == []  # nothing reached the bank
    finally:
        await no_bank_faults(shop)
    done = await withdrawal_reaches(shop, wid, "PAID", within=30)
    [at_bank] = [p for p in await bank_payouts(shop) if p["payout_no"] == wid]
    assert (at_bank["status"], at_bank["amount_minor"], at_bank["bank_ref"]) == ("PAID", 45_000, done["bank_ref"])
    assert await entries(shop, wid, "WITHDRAWAL_PAID") == 1 and await entries(shop, wid, "WITHDRAWAL_FAILED") == 0
    assert (await shop.balance(available(m)), await shop.balance(withdrawing(m))) == (25_000, 0)


def payout_result(wid: str, batch_no: str, amount: int, status: str = "PAID", **extra: Any) -> bytes:
    return json.dumps(
        {
            "event_id": f"evt-{uuid.uuid4().hex}",
            "event_type": "payout.paid" if status == "PAID" else "payout.failed",
            "party": "bank",
            "batch_no": batch_no,
            "payout_no": wid,
            "amount_minor": amount,
            "currency": "CNY",
            "status": status,
            "failure_reason": None if status == "PAID" else "ACCOUNT_FROZEN: forged",
            "bank_ref": "forged-ref" if status == "PAID" else None,
            **extra,
        }
    ).encode()


async def test_forged_and_repeated_bank_callbacks_move_no_money(shop):
    m = await payee(shop, 50_000)
    await bank(shop, callback_delay_ms=4000)  # the bank's real answer comes 4 s after it takes the batch
    try:
        wid = (await withdraw(shop, m, 30_000)).json()["withdrawal_id"]
        batch_no = (await withdrawal_reaches(shop, wid, "SUBMITTED"))["batch"]["batch_id"]
        forged_fail = payout_result(wid, batch_no, 30_000, "FAILED")
        attempts = [
            # a guessed secret, and the bank's secret signing another party's path
            (signed_headers("guessed", "POST", "/v1/callbacks/bank", forged_fail), "bank", 401),
            (signed("bank", forged_fail, path="/v1/callbacks/wechat"), "bank", 401),
            # a payment channel's valid signature on a payout result
            (signed("wechat", forged_fail), "wechat", 422),
        ]
        for headers, party, status in attempts:
            r = await shop.api.post(f"/v1/callbacks/{party}", content=forged_fail, headers=headers)
            assert r.status_code == status, r.text
        # The bank's own key, reporting another amount than was asked for: refused, listed for operators.
        wrong = payout_result(wid, batch_no, 3_000)
        r = await shop.api.post("/v1/callbacks/bank", content=wrong, headers=signed("bank", wrong))
        assert r.status_code == 422 and "asked for 30000 CNY" in r.json()["detail"], r.text
        assert (await withdrawal(shop, wid))["status"] == "SUBMITTED"
        assert await shop.balance(withdrawing(m)) == 30_000
        done = await withdrawal_reaches(shop, wid, "PAID", within=30)
    finally:
        await no_bank_faults(shop)
    assert done["bank_ref"] != "forged-ref"
    # The bank's real notification, delivered once more long after: a duplicate, nothing moves.
    notes = (await shop.outside.get("/_sandbox/notifications", params={"party": "bank", "ref": wid})).json()
    [note] = [n for n in notes if n["event_type"] == "payout.paid"]
    assert (await shop.outside.post(f"/_sandbox/bank/notifications/{note['event_id']}/redeliver")).status_code == 200
    await eventually(lambda: _delivered(shop, wid, times=2), 20)
    assert await entries(shop, wid, "WITHDRAWAL_PAID") == 1 and await entries(shop, wid, "WITHDRAWAL_FAILED") == 0
    assert (await shop.balance(available(m)), await shop.balance(withdrawing(m))) == (20_000, 0)
    refused = await shop.api.get("/v1/callbacks/refused", params={"subject_ref": wid}, headers=shop.as_(Role.OPERATOR))
    assert sorted(n["party"] for n in refused.json()) == ["bank", "wechat"], refused.text


async def _delivered(shop: Shop, wid: str, times: int) -> bool:
    notes = (await shop.outside.get("/_sandbox/notifications", params={"party": "bank", "ref": wid})).json()
    return any(n["deliveries"] >= times for n in notes)


async def test_bank_results_after_finance_resolved_failed_never_unfreeze_or_pay_twice(shop):
    """Two UNKNOWN payouts finance resolves as FAILED (money back to available). The bank then reports
    one FAILED too (twice: a redelivery) and the other PAID: nothing moves again, the contradiction is
    surfaced for finance."""
    m, n = await payee(shop, 40_000), await payee(shop, 40_000)
    await bank(shop, payout_failure="unknown")
    try:
        agrees = (await withdraw(shop, m, 15_000)).json()["withdrawal_id"]
        contradicts = (await withdraw(shop, n, 12_000)).json()["withdrawal_id"]
        for wid in (agrees, contradicts):
            await withdrawal_reaches(shop, wid, "UNKNOWN", within=30)
    finally:
        await no_bank_faults(shop)
    body = {"outcome": "FAILED", "reason": "the bank returned the transfer"}
    checker = await second_finance_person(shop)
    for wid in (agrees, contradicts):
        r = await resolve_payout(shop, wid, body, shop.keys[Role.FINANCE], checker)
        assert r.status_code == 200 and r.json()["status"] == "FAILED", r.text
    assert (await shop.balance(available(m)), await shop.balance(available(n))) == (40_000, 40_000)

    failed = await shop.outside.post(
        f"/_sandbox/bank/payouts/{agrees}/settle", json={"status": "FAILED", "failure_reason": "ACCOUNT_FROZEN: z"}
    )
    paid = await shop.outside.post(f"/_sandbox/bank/payouts/{contradicts}/settle", json={"status": "PAID"})
    assert failed.status_code == paid.status_code == 200, (failed.text, paid.text)
    await eventually(lambda: _delivered(shop, agrees, times=1), 20)
    notes = (await shop.outside.get("/_sandbox/notifications", params={"party": "bank", "ref": agrees})).json()
    [note] = [x for x in notes if x["event_type"] == "payout.failed"]
    assert (await shop.outside.post(f"/_sandbox/bank/notifications/{note['event_id']}/redeliver")).status_code == 200
    await eventually(lambda: _delivered(shop, agrees, times=2), 20)

    async def surfaced() -> dict[str, Any] | None:
        w = await withdrawal(shop, contradicts)
        return w if w["bank_conflict"] else None

    conflict = await eventually(surfaced, 30)
    assert conflict["status"] == "FAILED" and "PAID" in conflict["bank_conflict"], conflict
    quiet = await withdrawal(shop, agrees)
    assert quiet["status"] == "FAILED" and not quiet["bank_conflict"], quiet
    for wid in (agrees, contradicts):
        assert await entries(shop, wid, "WITHDRAWAL_FAILED") == 1 and await entries(shop, wid, "WITHDRAWAL_PAID") == 0
    assert (await shop.balance(available(m)), await shop.balance(withdrawing(m))) == (40_000, 0)
    assert (await shop.balance(available(n)), await shop.balance(withdrawing(n))) == (40_000, 0)
    listed = await shop.api.get("/v1/withdrawals", params={"conflict": "true"}, headers=shop.as_(Role.FINANCE))
    ids = [x["withdrawal_id"] for x in listed.json()]
    assert contradicts in ids and agrees not in ids, listed.text


async def test_a_batch_never_holds_more_than_its_limit(shop):
    """51 withdrawals wait while the batcher cannot claim (its table is locked): it then takes 50, and the
    51st goes in the next batch."""
    merchants = [await payee(shop, 10_000) for _ in range(BATCH_MAX_ITEMS + 1)]
    async with unit_of_work(shop.sessions) as session:
        # Held until every withdrawal is queued: the batcher's claim waits on it, as on a busy database.
        await session.execute(text("LOCK TABLE payout_batches IN ACCESS EXCLUSIVE MODE"))
        gate = asyncio.Semaphore(10)

        async def one(m: str) -> str:
            async with gate:
                r = await withdraw(shop, m, 1_000)
            assert r.status_code == 202 and r.json()["status"] == "QUEUED", r.text
            return str(r.json()["withdrawal_id"])

        wids = await asyncio.wait_for(asyncio.gather(*(one(m) for m in merchants)), 60)
    done = [await withdrawal_reaches(shop, wid, "PAID", within=40) for wid in wids]
    batches: dict[str, list[str]] = {}
    for w in done:
        batches.setdefault(w["batch"]["batch_id"], []).append(w["withdrawal_id"])
    sizes = {b: len(await bank_payouts(shop, b)) for b in batches}
    assert all(size <= BATCH_MAX_ITEMS for size in sizes.values()), sizes
    assert BATCH_MAX_ITEMS in sizes.values(), sizes  # the claim that waited took exactly its limit
    for wid in wids:
        assert await entries(shop, wid, "WITHDRAWAL_PAID") == 1
    for m in merchants:
        assert (await shop.balance(available(m)), await shop.balance(withdrawing(m))) == (9_000, 0)
