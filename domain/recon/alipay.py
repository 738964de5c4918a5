"""Alipay's trade bill (``bill_type=trade``), parsed strictly and as a stream.

The download is a ``.csv.zip`` whose entry names are GBK-encoded (no UTF-8 flag):
``{pid}_{yyyyMMdd}_业务明细.csv`` (the details) and ``{pid}_{yyyyMMdd}_业务明细(汇总).csv`` (the totals),
both GBK text. The details file: ``#`` comment lines on top (#支付宝业务明细查询, #账号, #起始日期 …
and a ``#-----…业务明细列表…`` rule), the header (支付宝交易号,商户订单号,业务类型,… with full-width
parentheses in 订单金额（元） etc.), rows whose id fields end with a tab (so spreadsheets keep them as
text), then ``#…业务明细列表结束…``, ``#交易合计：N笔，商家实收共X元…``, ``#退款合计：N笔，商家实收共-Y元…``
and ``#导出时间：…``. 业务类型 is 交易 (a payment) or 退款 (a refund: negative amounts, the original
商户订单号, our refund number in 退款批次号/请求号). 服务费（元） is what the merchant pays: negative on a
payment, positive on a refund (the fee given back); lines carry it as a fee charged (see lines.py).

The zip's central directory sits at its end, so a non-seekable input is spooled to a temporary file
(on disk past a few MiB) before the entries are read; each entry is then read as a stream.
"""

from __future__ import annotations

import csv
import re
import tempfile
import zipfile
from collections.abc import Callable, Iterator
from typing import IO

from domain.recon.lines import (
    FEE_UNITS_PER_MINOR,
    LineKind,
    Source,
    StatementLine,
    StatementRefused,
    StatementSummary,
    parse_count,
    parse_decimal,
    parse_local_time,
)
from domain.recon.stream import Header, StatementFile, chunks_of, field, nonempty, text_lines
from domain.recon.stream import Source as Input

DETAIL_SUFFIX = "_业务明细.csv"
SUMMARY_SUFFIX = "_业务明细(汇总).csv"
KINDS = {"交易": LineKind.PAYMENT, "退款": LineKind.REFUND}
ORDER_AMOUNT, RECEIVED, FEE, REFUND_NO = "订单金额（元）", "商家实收（元）", "服务费（元）", "退款批次号/请求号"
REQUIRED = ("支付宝交易号", "商户订单号", "业务类型", "完成时间", ORDER_AMOUNT, RECEIVED, REFUND_NO, FEE)
_TOTAL = re.compile(r"#(交易|退款)合计：(\d+)笔，商家实收共(-?\d+(?:\.\d+)?)元")
SPOOL_IN_MEMORY = 8 << 20


def _signed_cents(text: str) -> int:
    return parse_decimal(text, 2, signed=True)


def _record(line: str) -> list[str]:
    # One physical line is one record here: Alipay never quotes a newline into a field.
    return next(csv.reader([line]))


def _untab(value: str) -> str:
    return value[:-1] if value.endswith("\t") else value


class AlipayBill(StatementFile):
    source = Source.ALIPAY

    def __iter__(self) -> Iterator[StatementLine]:
        with self._seekable() as spooled, self._open(spooled) as zf:
            detail, summary = self._entries(zf)
            totals = {"交易": [0, 0], "退款": [0, 0]}  # count, 商家实收 in fen (signed)
            fee_cents = 0
            try:
                with zf.open(detail) as raw:
                    for line, fee in self._details(text_lines(raw, "gbk"), totals):
                        fee_cents += fee
                        yield line
            except StatementRefused as exc:
                raise StatementRefused(exc.line, exc.column, f"{detail}: {exc.reason}") from None
            try:
                with zf.open(summary) as raw:
                    self._check_summary(text_lines(raw, "gbk"), totals, fee_cents)
            except StatementRefused as exc:
                raise StatementRefused(exc.line, exc.column, f"{summary}: {exc.reason}") from None
        self.summary = StatementSummary(
            source=Source.ALIPAY,
            count=totals["交易"][0] + totals["退款"][0],
            payment_minor=totals["交易"][1],
            refund_minor=-totals["退款"][1],
            fee=-fee_cents * FEE_UNITS_PER_MINOR,
        )

    def _seekable(self) -> IO[bytes]:
        spool = tempfile.SpooledTemporaryFile(max_size=SPOOL_IN_MEMORY)
        for chunk in chunks_of(self._data):
            spool.write(chunk)
        spool.seek(0)
        return spool

    @staticmethod
    def _open(spooled: IO[bytes]) -> zipfile.ZipFile:
        try:
            return zipfile.ZipFile(spooled, metadata_encoding="gbk")
        except zipfile.BadZipFile as exc:
            raise StatementRefused(None, None, f"not a zip file: {exc}") from None

    @staticmethod
    def _entries(zf: zipfile.ZipFile) -> tuple[str, str]:
        names = zf.namelist()
        detail = [n for n in names if n.endswith(DETAIL_SUFFIX)]
        summary = [n for n in names if n.endswith(SUMMARY_SUFFIX)]
        if len(detail) != 1 or len(summary) != 1:
            reason = f"the zip must hold one 业务明细 and one 业务明细(汇总) entry, it has {names}"
            raise StatementRefused(None, None, reason)
        return detail[0], summary[0]

    def _details(self, lines: Iterator[str], totals: dict[str, list[int]]) -> Iterator[tuple[StatementLine, int]]:
        header: Header | None = None
        line_no = 0
        for text in lines:
            line_no += 1
            text = text.rstrip("\r\n")
            if text.startswith("#"):
                if header is None:
                    continue
                if "业务明细列表结束" in text:
                    self._check_footer(lines, line_no, totals)
                    return
                raise StatementRefused(line_no, None, "a comment line inside the details")
            if header is None:
                header = Header(_record(text), REQUIRED, line_no)
                continue
            if not text:
                raise StatementRefused(line_no, None, "blank line inside the details")
            record = [_untab(v) for v in _record(text)]
            header.check_width(record, line_no)
            line, received, fee = self._line(record, header, line_no)
            kind = "交易" if line.kind is LineKind.PAYMENT else "退款"
            totals[kind][0] += 1
            totals[kind][1] += received
            yield line, fee
        raise StatementRefused(line_no + 1, None, "truncated: the details end without 业务明细列表结束 and the totals")

    @staticmethod
    def _line(r: list[str], h: Header, line_no: int) -> tuple[StatementLine, int, int]:
        kind_text = field(r, h, "业务类型", line_no, nonempty)
        kind = KINDS.get(kind_text)
        if kind is None:
            raise StatementRefused(line_no, "业务类型", f"unknown 业务类型 {kind_text!r}")
        refund = kind is LineKind.REFUND
        amount = field(r, h, ORDER_AMOUNT, line_no, _signed_cents)
        received = field(r, h, RECEIVED, line_no, _signed_cents)
        for column, value in ((ORDER_AMOUNT, amount), (RECEIVED, received)):
            if (value < 0) != refund or value == 0:
                sign = "negative" if refund else "positive"
                raise StatementRefused(line_no, column, f"a {kind_text} row's amount must be {sign}")
        fee = field(r, h, FEE, line_no, _signed_cents)
        line = StatementLine(
            source=Source.ALIPAY,
            kind=kind,
            line_no=line_no,
            our_no=field(r, h, REFUND_NO if refund else "商户订单号", line_no, nonempty),
            order_ref=field(r, h, "商户订单号", line_no, nonempty) if refund else None,
            party_no=field(r, h, "支付宝交易号", line_no, nonempty),
            status=kind_text,
            amount_minor=abs(amount),
            fee=-fee * FEE_UNITS_PER_MINOR,
            currency="CNY",
            occurred_at=field(r, h, "完成时间", line_no, parse_local_time),
        )
        return line, received, fee

    @staticmethod
    def _check_footer(lines: Iterator[str], line_no: int, totals: dict[str, list[int]]) -> None:
        seen: set[str] = set()
        for text in lines:
            line_no += 1
            m = _TOTAL.match(text)
            if m is None:
                continue
            kind, count, amount = m.group(1), int(m.group(2)), m.group(3)
            try:
                cents = _signed_cents(amount)
            except ValueError as exc:
                raise StatementRefused(line_no, f"{kind}合计", str(exc)) from None
            if [count, cents] != totals[kind]:
                raise StatementRefused(line_no, f"{kind}合计", f"says {count}笔 {amount}元, the rows disagree")
            seen.add(kind)
        for kind in ("交易", "退款"):
            if kind not in seen:
                raise StatementRefused(line_no + 1, f"{kind}合计", "truncated: the totals line is missing")

    @staticmethod
    def _check_summary(lines: Iterator[str], totals: dict[str, list[int]], fee_cents: int) -> None:
        header: Header | None = None
        line_no = 0
        for text in lines:
            line_no += 1
            if text.startswith("#") or not text.strip():
                continue
            record = _record(text.rstrip("\r\n"))
            if header is None:
                header = Header(record, ("交易订单总笔数", "退款订单总笔数", RECEIVED, FEE), line_no)
                continue
            if record[0] != "合计":
                continue
            header.check_width(record, line_no)
            expected: dict[str, tuple[Callable[[str], int], int]] = {
                "交易订单总笔数": (parse_count, totals["交易"][0]),
                "退款订单总笔数": (parse_count, totals["退款"][0]),
                RECEIVED: (_signed_cents, totals["交易"][1] + totals["退款"][1]),
                FEE: (_signed_cents, fee_cents),
            }
            for name, (convert, total) in expected.items():
                if field(record, header, name, line_no, convert) != total:
                    said = record[header.index[name]]
                    raise StatementRefused(line_no, name, f"合计 says {said}, the details disagree")
            return
        raise StatementRefused(line_no + 1, "合计", "truncated: the 合计 row is missing")


def parse_alipay(data: Input) -> AlipayBill:
    return AlipayBill(data)
