"""The statement parsers read the parties' files exactly, to the last thousandth of a fen, and refuse
a malformed, truncated or self-contradicting file with the line, the column and why.

Fixtures (tests/fixtures/recon/) are written by hand as the parties document their formats, not by
the sandbox's writers, so a writer and a parser cannot agree on a mistake; the property test at the
end then holds the writers and the parsers to each other for any lines at all.
"""

from __future__ import annotations

import io
import zipfile
from collections.abc import Callable
from dataclasses import replace
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from domain.recon.alipay import parse_alipay
from domain.recon.bank import parse_bank
from domain.recon.lines import (
    SHANGHAI,
    LineKind,
    Source,
    StatementLine,
    StatementRefused,
    StatementSummary,
    format_decimal,
    parse_decimal,
)
from domain.recon.wechat import parse_wechat
from ops.sandbox.statement_files import _GbkName, write_alipay_zip, write_bank, write_wechat

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures" / "recon"
Parser = Callable[[Any], Any]


def at(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=SHANGHAI)


def read(parser: Parser, data: Any) -> tuple[list[StatementLine], StatementSummary]:
    parsed = parser(data)
    lines = list(parsed)
    assert parsed.summary is not None
    return lines, parsed.summary


def fixture(name: str) -> bytes:
    return (FIXTURES / name).read_bytes()


def wx(line_no: int, kind: LineKind, our_no: str, order_ref: str | None, party_no: str, status: str, amount: int,
       fee: int, when: str) -> StatementLine:  # fmt: skip
    return StatementLine(
        Source.WECHAT, kind, line_no, our_no, order_ref, party_no, status, amount, fee, "CNY", at(when)
    )


P, R = LineKind.PAYMENT, LineKind.REFUND
TXN1, TXN2 = "4200002026120112345678901", "4200002026120112345678902"


def test_wechat_all_layout_parses_to_exact_lines_and_checked_totals() -> None:
    with (FIXTURES / "wechat_all.csv").open("rb") as f:  # a binary file object, read in chunks
        lines, summary = read(parse_wechat, f)
    assert lines == [
        wx(2, P, "PAY20261201A001", None, TXN1, "SUCCESS", 9000, 54000, "2026-12-01 09:15:02"),
        wx(3, P, "PAY20261201A002", None, TXN2, "SUCCESS", 12345, 74070, "2026-12-01 12:30:45"),
        wx(4, R, "RF20261201A001", "PAY20261201A001", TXN1, "SUCCESS", 3000, -18000, "2026-12-01 18:00:00"),
        wx(5, P, "PAY20261201A003", None, "4200002026120112345678903", "REVOKED", 1000, 0, "2026-12-01 20:00:00"),
    ]
    assert summary == StatementSummary(Source.WECHAT, count=4, payment_minor=22345, refund_minor=3000, fee=110070)


def test_wechat_success_refund_and_legacy_layouts_are_read_by_header_name() -> None:
    lines, summary = read(parse_wechat, [fixture("wechat_success.csv")])
    assert [(x.our_no, x.amount_minor, x.fee) for x in lines] == [
        ("PAY20261201A001", 9000, 54000),
        ("PAY20261201A002", 12345, 74070),
    ]
    assert (summary.count, summary.payment_minor, summary.refund_minor, summary.fee) == (2, 21345, 0, 128070)

    lines, summary = read(parse_wechat, [fixture("wechat_refund.csv")])
    # Dated when the refund was requested (退款申请时间), not when the paid order was (交易时间).
    assert lines == [
        wx(2, R, "RF20261201A002", "PAY20261130A009", "4200002026113012345678909", "SUCCESS", 4567, -27000,
           "2026-12-01 18:00:00"),
    ]  # fmt: skip
    assert (summary.refund_minor, summary.fee) == (4567, -27000)

    parsed = parse_wechat([fixture("wechat_legacy.csv")])
    lines = list(parsed)
    assert parsed.legacy
    assert lines == [
        wx(2, P, "PAYLEGACY0001", None, "1001690740201412010005734289", "SUCCESS", 1, 0, "2026-12-01 09:15:02"),
        wx(3, P, "PAYLEGACY0002", None, "1002780740201412010005729794", "SUCCESS", 8800, 53000, "2026-12-01 16:46:14"),
        wx(4, R, "RFLEGACY0001", "PAYLEGACY0002", "1002780740201412010005729794", "SUCCESS", 800, -5000,
           "2026-12-01 17:05:00"),
    ]  # fmt: skip
    assert parsed.summary == StatementSummary(Source.WECHAT, count=3, payment_minor=8801, refund_minor=800, fee=48000)


def test_a_stream_cut_anywhere_reads_the_same() -> None:
    data = fixture("wechat_all.csv")
    whole = read(parse_wechat, [data])
    # One byte at a time: the BOM and every three-byte character are split across chunks.
    assert read(parse_wechat, (data[i : i + 1] for i in range(len(data)))) == whole
    assert read(parse_alipay, iter([fixture("alipay_trade.csv.zip")[:100], fixture("alipay_trade.csv.zip")[100:]]))


def test_alipay_zip_parses_gbk_names_and_content_tabs_comments_and_negative_refunds() -> None:
    with (FIXTURES / "alipay_trade.csv.zip").open("rb") as f:
        lines, summary = read(parse_alipay, f)

    def ali(line_no: int, kind: LineKind, our_no: str, ref: str | None, txn: str, amount: int, fee: int, when: str):  # type: ignore[no-untyped-def]
        status = "交易" if kind is P else "退款"
        return StatementLine(Source.ALIPAY, kind, line_no, our_no, ref, txn, status, amount, fee, "CNY", at(when))

    assert lines == [
        ali(6, P, "PAY20261201B001", None, "2026120122001412345678901234", 8800, 53000, "2026-12-01 10:01:09"),
        ali(7, P, "PAY20261201B002", None, "2026120122001412345678901235", 1550, 9000, "2026-12-01 11:20:30"),
        ali(8, R, "RF20261201B001", "PAY20261201B001", "2026120122001412345678901234", 2000, -12000,
            "2026-12-01 19:45:00"),
    ]  # fmt: skip
    assert summary == StatementSummary(Source.ALIPAY, count=3, payment_minor=10350, refund_minor=2000, fee=50000)


def test_bank_payout_statement_parses_exactly() -> None:
    lines, summary = read(parse_bank, [fixture("bank_payouts.csv")])
    assert [(x.line_no, x.our_no, x.party_no, x.status, x.amount_minor, x.occurred_at) for x in lines] == [
        (2, "W0001", "bkp_0a1b2c", "PAID", 15000, at("2026-12-01 10:00:01")),
        (3, "W0002", "", "FAILED", 2000, at("2026-12-01 10:00:02")),
        (4, "W0003", "bkp_0a1b2d", "PAID", 123456, at("2026-12-01 23:59:59")),
    ]
    assert all(x.kind is LineKind.PAYOUT and x.fee == 0 and x.order_ref is None for x in lines)
    assert summary == StatementSummary(Source.BANK, count=3, payout_paid_minor=138456, payout_failed_minor=2000)


def test_decimals_are_parsed_exactly_and_strictly() -> None:
    assert parse_decimal("123.45", 2) == 12345
    assert parse_decimal("0", 2) == 0 and parse_decimal("0.0", 2) == 0
    assert parse_decimal("-0.00001", 5, signed=True) == -1
    assert parse_decimal("99999999999999.99", 2) == 9_999_999_999_999_999  # no float would hold this
    for bad, decimals, signed in [
        ("", 2, False), ("1.234", 2, False), ("-1.00", 2, False), ("+1.00", 2, True), ("1e3", 2, False),
        (" 1.00", 2, False), ("1.", 2, False), (".5", 2, False), ("1,000.00", 2, False), ("１.00", 2, False),
    ]:  # fmt: skip
        with pytest.raises(ValueError):
            parse_decimal(bad, decimals, signed=signed)
    assert format_decimal(-12345, 5) == "-0.12345" and format_decimal(5, 2) == "0.05"


# --- refusals: (file, change, line, column, reason) ------------------------------------------------


def wechat_with(old: str, new: str) -> bytes:
    data = fixture("wechat_all.csv")
    assert old.encode() in data, old
    return data.replace(old.encode(), new.encode(), 1)


def alipay_with(entry_suffix: str, old: str, new: str, *, drop: bool = False) -> bytes:
    out = io.BytesIO()
    with zipfile.ZipFile(io.BytesIO(fixture("alipay_trade.csv.zip")), metadata_encoding="gbk") as src:
        with zipfile.ZipFile(out, "w") as dst:
            for name in src.namelist():
                text = src.read(name).decode("gbk")
                if name.endswith(entry_suffix):
                    if drop:
                        continue
                    assert old in text, old
                    text = text.replace(old, new, 1)
                dst.writestr(_GbkName(name), text.encode("gbk"))
    return out.getvalue()


def bank_with(old: str, new: str) -> bytes:
    data = fixture("bank_payouts.csv")
    assert old.encode() in data, old
    return data.replace(old.encode(), new.encode(), 1)


SUMMARY = "_业务明细(汇总).csv"
DETAIL = "_业务明细.csv"
REFUSALS = [
    # WeChat (line 1 is the header, 2-5 details, 6 the summary header, 7 the summary row)
    (parse_wechat, fixture("wechat_truncated.csv"), 5, None, "without its summary"),
    (parse_wechat, fixture("wechat_bad_amount.csv"), 3, "应结订单金额", "more than 2 decimals"),
    (parse_wechat, fixture("wechat_wrong_columns.csv"), 5, None, "26 columns where the header has 27"),
    (parse_wechat, wechat_with("`4,`223.45", "`4,`223.46"), 7, "应结订单总金额", "the rows add up to 223.45"),
    (parse_wechat, wechat_with("`1.10070,", "`1.10071,"), 7, "手续费总金额", "the rows add up to 1.10070"),
    (parse_wechat, wechat_with("`4,`223.45", "`5,`223.45"), 7, "总交易单数", "the rows add up to 4"),
    (parse_wechat, wechat_with("`SUCCESS,`CMB_CREDIT", "`PAID,`CMB_CREDIT"), 3, "交易状态", "unknown status 'PAID'"),
    (parse_wechat, wechat_with("`ORIGINAL,`SUCCESS", "`ORIGINAL,`DONE"), 4, "退款状态", "unknown refund status"),
    (parse_wechat, wechat_with("`CNY,`90.00", "`CNY,`-90.00"), 2, "应结订单金额", "must not carry a sign"),
    (parse_wechat, wechat_with("`CNY,`90.00", "`CNY,`"), 2, "应结订单金额", "not a decimal"),
    (parse_wechat, wechat_with("`CNY,`90.00", "`CNY,`0.00"), 2, "应结订单金额", "not a positive amount"),
    (parse_wechat, wechat_with("`0.54000,", "`0.540001,"), 2, "手续费", "more than 5 decimals"),
    (parse_wechat, wechat_with("`0.54000,`0.60%", "`0.54000,`0.6"), 2, "费率", "not a rate"),
    (parse_wechat, wechat_with("`2026-12-01 12:30:45", "`2026-12-01 25:30:45"), 3, "交易时间", "is not a time"),
    (parse_wechat, wechat_with(",`JSAPI,`SUCCESS,`OTHERS", ",JSAPI,`SUCCESS,`OTHERS"), 2, "交易类型", "backtick"),
    (parse_wechat, wechat_with("商户订单号,", "商户单号,"), 1, "商户订单号", "lacks this column"),
    (parse_wechat, wechat_with("`4,`223.45,`30.00,`0.00,`1.10070,`223.45,`30.00", ""), 7, None, "no summary row"),
    (parse_wechat, fixture("wechat_all.csv") + b"`1,`2\r\n", 8, None, "after the summary"),
    (parse_wechat, wechat_with("Haircut", "\xff").replace("ÿ".encode(), b"\xff"), 5, None, "not valid utf-8"),
    (parse_wechat, b"", 1, None, "empty file"),
    # Alipay (details: 5 comment/header lines, rows on 6-8, totals on 10-11; 汇总: 合计 on line 7)
    (parse_alipay, fixture("alipay_truncated.csv.zip"), 9, None, "end without 业务明细列表结束"),
    (
        parse_alipay,
        alipay_with(DETAIL, "#交易合计：2笔，商家实收共103.50元", "#交易合计：2笔，商家实收共103.51元"),
        10,
        "交易合计",
        "the rows disagree",
    ),
    (
        parse_alipay,
        alipay_with(DETAIL, "#退款合计：1笔，商家实收共-20.00元，商家优惠共0.00元\r\n", ""),
        12,
        "退款合计",
        "missing",
    ),
    (parse_alipay, alipay_with(DETAIL, "B002\t,交易,", "B002\t,退款,"), 7, "订单金额（元）", "must be negative"),
    (parse_alipay, alipay_with(DETAIL, ",交易,上门", ",转账,上门"), 6, "业务类型", "unknown 业务类型"),
    (parse_alipay, alipay_with(DETAIL, ",-20.00,-20.00,", ",-20.005,-20.00,"), 8, "订单金额（元）", "more than 2"),
    (
        parse_alipay,
        alipay_with(SUMMARY, "合计,,2,1,83.50,83.50", "合计,,2,1,83.50,83.51"),
        7,
        "商家实收（元）",
        "details disagree",
    ),
    (parse_alipay, alipay_with(SUMMARY, "", "", drop=True), None, None, "one 业务明细 and one 业务明细(汇总)"),
    (parse_alipay, fixture("wechat_all.csv"), None, None, "not a zip file"),
    # Bank
    (parse_bank, fixture("bank_unknown_status.csv"), 3, "status", "unknown status 'RETURNED'"),
    (parse_bank, bank_with("3,2,1384.56,1,20.00\r\n", ""), 6, None, "no summary row"),
    (parse_bank, bank_with("3,2,1384.56,1,20.00", ""), 6, None, "no summary row"),
    (
        parse_bank,
        bank_with("total_count,paid_count,paid_amount,failed_count,failed_amount\r\n3,2,1384.56,1,20.00\r\n", ""),
        5,
        None,
        "without its summary",
    ),
    (parse_bank, bank_with("3,2,1384.56", "3,2,1384.57"), 6, "paid_amount", "the rows disagree"),
    (parse_bank, bank_with("PAID,bkp_0a1b2c", "PAID,"), 2, "bank_ref", "without the bank's reference"),
    (
        parse_bank,
        bank_with("2026-12-01,2026-12-01 23:59:59", "2026-12-02,2026-12-01 23:59:59"),
        4,
        "value_date",
        "not the date",
    ),
    (parse_bank, bank_with("1234.56,CNY", "1234.5.6,CNY"), 4, "amount", "not a decimal"),
    (parse_bank, bank_with("bkp_0a1b2c,2026-12-01", "bkp_0a1b2c,20261201"), 2, "value_date", "not a date"),
    (parse_bank, bank_with(",CNY,FAILED", ",cny,FAILED"), 3, "currency", "not an ISO currency"),
]


@pytest.mark.parametrize(("parser", "data", "line", "column", "reason"), REFUSALS)
def test_malformed_statements_are_refused_with_line_column_and_reason(
    parser: Parser, data: bytes, line: int | None, column: str | None, reason: str
) -> None:
    with pytest.raises(StatementRefused) as refused:
        read(parser, [data])
    assert (refused.value.line, refused.value.column) == (line, column), str(refused.value)
    assert reason.lower() in refused.value.reason.lower(), str(refused.value)
    assert refused.value.reason in str(refused.value)


# --- property: any lines, written by the sandbox's writers, read back equal ------------------------

ids = st.text(alphabet="ABCDEFGHJKMNPQRSTUVWXYZabcdefghjk0123456789_-", min_size=1, max_size=32)
amounts = st.integers(min_value=1, max_value=10**11)
times = st.datetimes(min_value=datetime(2000, 1, 1), max_value=datetime(2099, 12, 31)).map(
    lambda d: d.replace(microsecond=0, tzinfo=SHANGHAI)
)


@st.composite
def channel_line(draw: st.DrawFn, source: Source, kind: LineKind) -> StatementLine:
    refund = kind is LineKind.REFUND
    if source is Source.WECHAT:
        statuses = ["SUCCESS", "PROCESSING", "REFUNDCLOSE", "CHANGE"] if refund else ["SUCCESS", "REVOKED"]
        fee = draw(st.integers(min_value=-(10**9), max_value=10**9))
        currency = draw(st.sampled_from(["CNY", "USD", "HKD"]))
    else:
        statuses = ["退款" if refund else "交易"]
        fee = draw(st.integers(min_value=-(10**6), max_value=10**6)) * 1000  # Alipay prints fen
        currency = "CNY"
    return StatementLine(
        source, kind, 0, draw(ids), draw(ids) if refund else None, draw(ids), draw(st.sampled_from(statuses)),
        draw(amounts), fee, currency, draw(times),
    )  # fmt: skip


def kinds_for(layout: str) -> st.SearchStrategy[LineKind]:
    return {"SUCCESS": st.just(P), "REFUND": st.just(R)}.get(layout, st.sampled_from([P, R]))


def numbered(lines: list[StatementLine], first: int) -> list[StatementLine]:
    return [replace(x, line_no=first + i) for i, x in enumerate(lines)]


@settings(max_examples=60, deadline=None)
@given(st.data(), st.sampled_from(["ALL", "SUCCESS", "REFUND", "LEGACY"]))
def test_any_wechat_lines_written_by_the_sandbox_read_back_equal(data: st.DataObject, layout: str) -> None:
    lines = data.draw(st.lists(kinds_for(layout).flatmap(lambda k: channel_line(Source.WECHAT, k)), max_size=20))
    if not lines:
        return
    parsed, summary = read(parse_wechat, write_wechat(lines, layout))
    assert parsed == numbered(lines, 2)
    assert summary.count == len(lines)
    assert summary.payment_minor == sum(x.amount_minor for x in lines if x.kind is P)
    assert summary.refund_minor == sum(x.amount_minor for x in lines if x.kind is R)
    assert summary.fee == sum(x.fee for x in lines)


@settings(max_examples=40, deadline=None)
@given(st.lists(st.sampled_from([P, R]).flatmap(lambda k: channel_line(Source.ALIPAY, k)), min_size=1, max_size=20))
def test_any_alipay_lines_written_by_the_sandbox_read_back_equal(lines: list[StatementLine]) -> None:
    out = io.BytesIO()
    write_alipay_zip(
        out, lines, pid="2088102180000156", day=lines[0].occurred_at.date(), exported_at=lines[0].occurred_at
    )
    parsed, summary = read(parse_alipay, [out.getvalue()])
    assert parsed == numbered(lines, 6)
    assert (summary.count, summary.fee) == (len(lines), sum(x.fee for x in lines))
    assert summary.refund_minor == sum(x.amount_minor for x in lines if x.kind is R)


@st.composite
def payout_line(draw: st.DrawFn) -> StatementLine:
    paid = draw(st.booleans())
    return StatementLine(
        Source.BANK, LineKind.PAYOUT, 0, draw(ids), None, draw(ids) if paid else "", "PAID" if paid else "FAILED",
        draw(amounts), 0, draw(st.sampled_from(["CNY", "USD"])), draw(times),
    )  # fmt: skip


@settings(max_examples=40, deadline=None)
@given(st.lists(payout_line(), min_size=1, max_size=20))
def test_any_payout_lines_written_by_the_sandbox_read_back_equal(lines: list[StatementLine]) -> None:
    parsed, summary = read(parse_bank, write_bank(lines))
    assert parsed == numbered(lines, 2)
    assert summary.payout_paid_minor == sum(x.amount_minor for x in lines if x.status == "PAID")
    assert summary.payout_failed_minor == sum(x.amount_minor for x in lines if x.status == "FAILED")
