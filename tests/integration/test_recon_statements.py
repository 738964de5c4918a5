"""The parties' statements of a business day, downloaded from the sandbox as a reconciliation flow will
and read with the platform's parsers, carry exactly what the platform recorded through its real flows:
every payment, refund and payout under the platform's own number, with the exact amounts.

The stack's sandbox is shared by the whole run, so a day's statement also holds other tests' rows; each
test looks for its own numbers (and the parsers check every statement's totals against all its rows).
"""

from __future__ import annotations

import hashlib
import io
from collections.abc import Iterable
from datetime import date, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import select

from db.engine import unit_of_work
from db.models.payments import Payment
from db.models.refunds import Refund
from db.models.withdrawals import Withdrawal
from domain.money import apply_bps
from domain.recon.alipay import parse_alipay
from domain.recon.bank import parse_bank
from domain.recon.lines import FEE_UNITS_PER_MINOR, SHANGHAI, LineKind, Source, StatementLine
from domain.recon.wechat import parse_wechat
from domain.settings import Settings
from domain.signing import signed_headers, target_of
from ops.sandbox.statements import ALIPAY_METHOD
from tests.support.sandbox_receiver import eventually
from tests.support.shop import Shop, payee, withdraw, withdrawal_reaches

RATE_BP = 60  # the sandbox's default fee rate for both channels


async def signed_get(shop: Shop, party: str, url: str) -> Any:
    path = target_of(url)
    secret = Settings().party_secrets[party]
    return await shop.outside.get(path, headers=signed_headers(secret, "GET", path, b""))


def days_of(stamps: Iterable[datetime]) -> set[date]:
    """The business days a record may be billed on: the platform stamps a capture a moment after the
    channel did, so near midnight the channel's day can be the one before."""
    return {(t - s).astimezone(SHANGHAI).date() for t in stamps for s in (timedelta(0), timedelta(minutes=1))}


async def wechat_lines(shop: Shop, day: date) -> list[StatementLine]:
    r = await signed_get(shop, "wechat", f"/wechat/v3/bill/tradebill?bill_date={day}&bill_type=ALL")
    if r.status_code == 400 and r.json()["code"] == "NO_STATEMENT_EXIST":
        return []
    assert r.status_code == 200 and r.json()["hash_type"] == "SHA1", r.text
    file = await signed_get(shop, "wechat", r.json()["download_url"])
    assert file.status_code == 200, file.text
    assert hashlib.sha1(file.content).hexdigest() == r.json()["hash_value"]  # the very file announced
    assert file.content.startswith(b"\xef\xbb\xbf")
    parsed = parse_wechat(iter([file.content[:1000], file.content[1000:]]))
    return list(parsed)


async def alipay_lines(shop: Shop, day: date) -> list[StatementLine]:
    query = f"/alipay/gateway.do?method={ALIPAY_METHOD}&bill_type=trade&bill_date={day}"
    r = await signed_get(shop, "alipay", query)
    if r.status_code == 400 and r.json()["code"] == "NO_STATEMENT_EXIST":
        return []
    assert r.status_code == 200, r.text
    answer = r.json()["alipay_data_dataservice_bill_downloadurl_query_response"]
    assert answer["code"] == "10000", answer
    zipped = await shop.outside.get(target_of(answer["bill_download_url"]))  # unsigned: the token is the key
    assert zipped.status_code == 200 and zipped.content.startswith(b"PK"), zipped.text
    return list(parse_alipay(io.BytesIO(zipped.content)))


async def bank_lines(shop: Shop, day: date) -> list[StatementLine]:
    r = await signed_get(shop, "bank", f"/bank/v1/statements/payouts?date={day}")
    if r.status_code == 400 and r.json()["code"] == "NO_STATEMENT_EXIST":
        return []
    assert r.status_code == 200, r.text
    return list(parse_bank([r.content]))


def fee(amount: int) -> int:
    return apply_bps(amount, RATE_BP) * FEE_UNITS_PER_MINOR


async def paid_and_delivered(shop: Shop, merchant_id: str, channel: str, unit_price: int) -> str:
    items = [{"sku_id": "sku-1", "name": "Deep clean", "category_id": "home", "unit_price_minor": unit_price,
              "quantity": 1}]  # fmt: skip
    return str((await shop.delivered(merchant_id, channel=channel, items=items))["order_no"])


async def paid_never_accepted(shop: Shop, merchant_id: str, channel: str) -> str:
    """Paid, then the merchant never accepts: the order cancels itself and refunds everything."""
    placed = await shop.placed(merchant_id, channel=channel)
    assert (await shop.pay(placed["payment"]["pay_url"])).status_code == 200
    return str(placed["order_no"])


async def test_statements_carry_every_payment_refund_and_payout_the_platform_recorded(shop: Shop) -> None:
    m = await shop.merchant()
    delivered = {
        ch: await paid_and_delivered(shop, m, ch, price) for ch, price in (("wechat", 12345), ("alipay", 6789))
    }
    cancelled = {ch: await paid_never_accepted(shop, m, ch) for ch in ("wechat", "alipay")}
    for order_no in delivered.values():
        r = await shop.request_refund(order_no, 1234)
        assert r.status_code == 202, r.text
        await shop.refunded(order_no, 1234)
    for order_no in cancelled.values():
        order = await shop.reaches(order_no, "CANCELLED", within=30)
        await shop.refunded(order_no, order["paid_minor"], within=30)

    payee_id = await payee(shop, 100_000)
    r = await withdraw(shop, payee_id, 23_456)
    assert r.status_code == 202, r.text
    await withdrawal_reaches(shop, r.json()["withdrawal_id"], "PAID")

    orders = [*delivered.values(), *cancelled.values()]
    async with unit_of_work(shop.sessions) as session:
        payments = (await session.execute(select(Payment).where(Payment.order_no.in_(orders)))).scalars().all()
        refunds = (await session.execute(select(Refund).where(Refund.order_no.in_(orders)))).scalars().all()
        payout = await session.get(Withdrawal, r.json()["withdrawal_id"])
    assert payout is not None and payout.status == "PAID" and payout.bank_ref
    assert len(payments) == 4 and all(p.status == "SUCCEEDED" and p.paid_at for p in payments)
    assert len(refunds) == 4 and all(x.status == "SUCCEEDED" for x in refunds)
    by_payment = {p.payment_no: p for p in payments}
    numbers = {x.refund_no for x in refunds}

    for channel, fetch in (("wechat", wechat_lines), ("alipay", alipay_lines)):
        mine = [p for p in payments if p.channel == channel]
        stamps = [p.paid_at for p in mine if p.paid_at] + [x.created_at for x in refunds if x.channel == channel]
        ours = {p.payment_no for p in mine} | numbers
        # Only this test's numbers: other tests plant duplicate charges on the same day's statement.
        lines = [x for day in sorted(days_of(stamps)) for x in await fetch(shop, day) if x.our_no in ours]
        billed = {(x.kind, x.our_no): x for x in lines}
        assert len(billed) == len(lines), "one of this test's numbers appears twice on a statement"
        for p in mine:
            line = billed[(LineKind.PAYMENT, p.payment_no)]
            assert (line.source, line.party_no, line.amount_minor, line.currency) == (
                Source(channel),
                p.channel_txn_id,
                p.amount_minor,
                p.currency,
            )
            assert line.fee == fee(p.amount_minor) and line.status == ("SUCCESS" if channel == "wechat" else "交易")
            assert p.paid_at is not None and timedelta(0) <= p.paid_at - line.occurred_at < timedelta(seconds=30)
        for x in (x for x in refunds if x.channel == channel):
            line = billed[(LineKind.REFUND, x.refund_no)]
            paid = by_payment[x.payment_no]
            assert (line.order_ref, line.party_no, line.amount_minor, line.currency) == (
                paid.payment_no,
                paid.channel_txn_id,
                x.amount_minor,
                x.currency,
            )
            assert line.fee == -fee(x.amount_minor) and line.status == ("SUCCESS" if channel == "wechat" else "退款")
        # The delivered order was refunded in part, the cancelled one in full: both are on the bill.
        full = next(p.amount_minor for p in mine if p.order_no == cancelled[channel])
        billed_refunds = [
            x.amount_minor for (kind, no), x in billed.items() if kind is LineKind.REFUND and no in numbers
        ]
        assert sorted(billed_refunds) == sorted([1234, full])

    assert payout.updated_at is not None
    lines = [line for day in sorted(days_of([payout.updated_at])) for line in await bank_lines(shop, day)]
    [line] = [x for x in lines if x.our_no == payout.withdrawal_id]
    assert (line.kind, line.status, line.party_no, line.amount_minor, line.currency) == (
        LineKind.PAYOUT, "PAID", payout.bank_ref, 23_456, payout.currency
    )  # fmt: skip


def today() -> date:
    return datetime.now(SHANGHAI).date()


async def ours(shop: Shop, fetch: Any, number: str, *days: date) -> list[StatementLine]:
    """The lines of these days' statements that carry one of the platform's numbers."""
    return [x for day in days for x in await fetch(shop, day) if number in (x.our_no, x.order_ref)]


# The knobs part the channels' own records from what the platform hears (a payment it never hears of, a
# refund it keeps hearing PROCESSING): the channels hold what the ledger does not, on purpose.
@pytest.mark.channel_diverges
async def test_each_divergence_knob_shows_on_the_statement_while_the_platform_hears_otherwise(shop: Shop) -> None:
    m = await shop.merchant()
    # LONG: the customer pays, WeChat never says so (no callback; query and close answer "not paid").
    await shop.faults("wechat", hide_payment=True)
    hidden = await shop.placed(m, channel="wechat")
    assert (await shop.pay(hidden["payment"]["pay_url"])).status_code == 200
    # Cross-day: the next payment is billed on the next day.
    await shop.faults("wechat", hide_payment=False, bill_next_day=True)
    late = await shop.placed(m, channel="wechat")
    assert (await shop.pay(late["payment"]["pay_url"])).status_code == 200
    await shop.faults("wechat", bill_next_day=False)
    # AMOUNT_MISMATCH and DUPLICATE_PAYMENT: Alipay bills 1.00 more, twice, under two 交易号.
    await shop.faults("alipay", bill_amount_delta_minor=100, duplicate_payment=True)
    doubled = await shop.placed(m, channel="alipay")
    assert (await shop.pay(doubled["payment"]["pay_url"])).status_code == 200
    # STATUS_MISMATCH: the refund the order starts when the merchant never accepts succeeds at Alipay,
    # which keeps telling the platform PROCESSING.
    await shop.faults("alipay", bill_amount_delta_minor=0, duplicate_payment=False, refund_stuck_processing=True)
    captured = await shop.reaches(doubled["order_no"], "AWAITING_MERCHANT")
    assert captured["paid_minor"] == doubled["payable_minor"]  # the platform captured what it asked for
    await shop.reaches(doubled["order_no"], "CANCELLED", within=30)

    async def refund_started() -> list[dict[str, Any]]:
        refunds: list[dict[str, Any]] = (await shop.order(doubled["order_no"]))["refunds"]
        return refunds

    [refund] = await eventually(refund_started, within=30)

    async def asked_after_success() -> dict[str, Any] | None:
        at_channel = await shop.channel_refunds("alipay", doubled["payment"]["payment_no"])
        done = [x for x in at_channel if x["status"] == "SUCCESS" and x["query_calls"] >= 2]
        return done[0] if done else None

    await eventually(asked_after_success, within=30)
    await shop.faults("alipay", refund_stuck_processing=False)
    assert (await shop.refund(refund["refund_no"]))["status"] == "PROCESSING"

    # The hidden payment: the platform closed it at its deadline, the channel has it paid.
    gone = await shop.reaches(hidden["order_no"], "CANCELLED", within=30)
    assert gone["paid_minor"] == 0 and gone["payments"][0]["status"] == "CLOSED"
    truth = await shop.channel_order("wechat", hidden["payment"]["payment_no"])
    assert truth["status"] == "SUCCESS" and truth["close_calls"] >= 1

    day = today()
    [long] = await ours(shop, wechat_lines, hidden["payment"]["payment_no"], day)
    assert (long.kind, long.status, long.amount_minor) == (LineKind.PAYMENT, "SUCCESS", hidden["payable_minor"])
    assert long.party_no == truth["channel_txn_id"]
    # The late payment's order refunded itself (no merchant): that refund is on today's bill as usual.
    await shop.refunded(late["order_no"], late["payable_minor"], within=30)
    late_no = late["payment"]["payment_no"]
    on_today = await ours(shop, wechat_lines, late_no, day)
    assert [(x.kind, x.order_ref) for x in on_today] == [(LineKind.REFUND, late_no)]
    [next_day] = await ours(shop, wechat_lines, late_no, day + timedelta(days=1))
    assert (next_day.kind, next_day.amount_minor) == (LineKind.PAYMENT, late["payable_minor"])
    assert next_day.occurred_at.date() == day  # dated when it was paid, billed a day late

    billed = await ours(shop, alipay_lines, doubled["payment"]["payment_no"], day)
    payments = [x for x in billed if x.kind is LineKind.PAYMENT]
    assert [x.amount_minor for x in payments] == [doubled["payable_minor"] + 100] * 2
    assert len({x.party_no for x in payments}) == 2
    [stuck] = [x for x in billed if x.kind is LineKind.REFUND]
    assert (stuck.our_no, stuck.status, stuck.amount_minor) == (refund["refund_no"], "退款", doubled["payable_minor"])

    # STATUS_MISMATCH (bank): PAID at the bank, never reported, UNKNOWN on the platform.
    await shop.outside.put("/_sandbox/faults/bank", json={"payout_paid_unreported": True})
    try:
        payee_id = await payee(shop, 50_000)
        r = await withdraw(shop, payee_id, 12_345)
        assert r.status_code == 202, r.text
        unknown = await withdrawal_reaches(shop, r.json()["withdrawal_id"], "UNKNOWN", within=40)
    finally:
        await shop.outside.delete("/_sandbox/faults/bank")
    assert unknown["bank_ref"] is None
    [paid] = [x for x in await bank_lines(shop, today()) if x.our_no == unknown["withdrawal_id"]]
    assert (paid.status, paid.amount_minor) == ("PAID", 12_345) and paid.party_no.startswith("bkp_")


async def test_statement_apis_are_signed_wait_while_creating_and_serve_each_layout_and_rate(shop: Shop) -> None:
    m = await shop.merchant()
    placed = await shop.placed(m, channel="wechat")
    assert (await shop.pay(placed["payment"]["pay_url"])).status_code == 200
    await shop.reaches(placed["order_no"], "AWAITING_MERCHANT")
    payment_no, payable = placed["payment"]["payment_no"], placed["payable_minor"]
    day = today()
    url = f"/wechat/v3/bill/tradebill?bill_date={day}&bill_type=ALL"

    unsigned = await shop.outside.get(url)
    assert unsigned.status_code == 401 and unsigned.json()["code"] == "SIGNATURE_INVALID"
    forged = await shop.outside.get(url, headers=signed_headers("not-the-secret", "GET", url, b""))
    assert forged.status_code == 401
    for party, path in (("alipay", f"/alipay/gateway.do?method={ALIPAY_METHOD}&bill_date={day}"),
                        ("bank", f"/bank/v1/statements/payouts?date={day}")):  # fmt: skip
        assert (await shop.outside.get(path)).status_code == 401, party

    await shop.faults("wechat", bill_creating=True)
    creating = await signed_get(shop, "wechat", url)
    assert (creating.status_code, creating.json()) == (400, {"code": "STATEMENT_CREATING", "message": "Bill Creating"})
    await shop.faults("wechat", bill_creating=False)
    empty = await signed_get(shop, "wechat", "/wechat/v3/bill/tradebill?bill_date=2001-01-01&bill_type=ALL")
    assert (empty.status_code, empty.json()) == (400, {"code": "NO_STATEMENT_EXIST", "message": "No Bill Exist"})

    # The same day twice (nothing changed in between) is the same file: a re-run reads the same bytes.
    first, again = (await signed_get(shop, "wechat", url)).json(), (await signed_get(shop, "wechat", url)).json()
    assert first == again

    # SUCCESS lists payments only; REFUND has no row for an order nobody refunded.
    success = await signed_get(shop, "wechat", f"/wechat/v3/bill/tradebill?bill_date={day}&bill_type=SUCCESS")
    lines = list(parse_wechat([(await signed_get(shop, "wechat", success.json()["download_url"])).content]))
    assert {x.kind for x in lines} == {LineKind.PAYMENT} and payment_no in {x.our_no for x in lines}

    # An older merchant gets the legacy 24-column layout; a channel charging 0.38% bills at that rate.
    await shop.faults("wechat", legacy_bill=True, fee_rate_bp=38)
    announced = (await signed_get(shop, "wechat", url)).json()
    file = (await signed_get(shop, "wechat", announced["download_url"])).content
    assert file.decode("utf-8-sig").split("\r\n", 1)[0].split(",")[3] == "子商户号"
    parsed = parse_wechat([file])
    [line] = [x for x in parsed if x.our_no == payment_no]
    assert parsed.legacy and line.amount_minor == payable
    assert line.fee == apply_bps(payable, 38) * FEE_UNITS_PER_MINOR
