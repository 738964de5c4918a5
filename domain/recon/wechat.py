"""WeChat Pay's trade bill (交易账单), parsed strictly and as a stream.

The file (UTF-8 with a BOM): a header row of Chinese column names; detail rows whose every value
starts with a backtick; then a summary header row (plain) and exactly one summary row (backticked).
Layouts, told apart by their header (values are always looked up by name):

- ALL (27 columns), SUCCESS (20: no refund columns, no 申请退款金额), REFUND (29: 退款申请时间 and
  退款成功时间 after 代金券金额); summary 总交易单数,应结订单总金额,退款总金额,充值券退款总金额,
  手续费总金额,订单总金额,申请退款总金额;
- legacy (24 columns, older merchants): 子商户号, 总金额, 代金券或立减优惠金额, ...; summary
  总交易单数,总交易额,总退款金额,总代金券或立减优惠退款金额,手续费总金额.

Amounts are yuan with 2 decimals; 手续费 has 5 (kept exact, see domain.recon.lines); 费率 is like
``0.60%``. A payment row's status is its 交易状态 (SUCCESS / REVOKED) and its amount 应结订单金额
(legacy 总金额); a refund row (交易状态 REFUND) keeps the original 商户订单号 (``order_ref``), its
status is 退款状态 and its amount 退款金额; it is dated 退款申请时间 where the layout has it, else
交易时间 (when the refund was requested).
"""

from __future__ import annotations

import functools
import operator
import re
from collections.abc import Iterator
from itertools import repeat

from domain.recon.lines import (
    FEE_DECIMALS,
    LineKind,
    Source,
    StatementLine,
    StatementRefused,
    StatementSummary,
    format_decimal,
    parse_count,
    parse_currency,
    parse_decimal,
    parse_local_time,
    parse_positive_minor,
)
from domain.recon.stream import (
    Header,
    Records,
    Row,
    StatementFile,
    field,
    nonempty,
    nothing_after,
    row_of,
    summary_row,
    text_lines,
)
from domain.recon.stream import Source as Input

PAYMENT_STATUSES = frozenset({"SUCCESS", "REVOKED"})
REFUND_STATUSES = frozenset({"SUCCESS", "PROCESSING", "REFUNDCLOSE", "CHANGE"})
FEE = "手续费"
# Summary column → the detail column it totals (None: the row count).
SUMMARY_NEW = {
    "总交易单数": None,
    "应结订单总金额": "应结订单金额",
    "退款总金额": "退款金额",
    "充值券退款总金额": "充值券退款金额",
    "手续费总金额": FEE,
    "订单总金额": "订单金额",
    "申请退款总金额": "申请退款金额",
}
SUMMARY_LEGACY = {
    "总交易单数": None,
    "总交易额": "总金额",
    "总退款金额": "退款金额",
    "总代金券或立减优惠退款金额": "代金券或立减优惠退款金额",
    "手续费总金额": FEE,
}
REQUIRED = ("交易时间", "微信订单号", "商户订单号", "交易状态", "货币种类", FEE)
_RATE = re.compile(r"\d{1,3}(\.\d{1,4})?%")


def _rate(text: str) -> str:
    if not _RATE.fullmatch(text):
        raise ValueError(f"{text!r} is not a rate like 0.60%")
    return text


def _money(text: str) -> int:
    return parse_decimal(text, 2)


def _fee(text: str) -> int:
    return parse_decimal(text, FEE_DECIMALS, signed=True)


def _unticked(record: list[str], line_no: int, names: list[str]) -> list[str]:
    if not all(map(str.startswith, record, repeat("`"))):  # map keeps the common case in C
        name = next(n for n, v in zip(names, record, strict=True) if not v.startswith("`"))
        raise StatementRefused(line_no, name, "value does not start with a backtick")
    return [v[1:] for v in record]


# The fast path meets the same few values again and again (prices, fees, the second of the day): a hit
# in these caches is one dictionary lookup in C instead of a regex and a conversion.
_money_seen = functools.lru_cache(maxsize=1 << 16)(_money)
_fee_seen = functools.lru_cache(maxsize=1 << 16)(_fee)
_time_seen = functools.lru_cache(maxsize=1 << 12)(parse_local_time)
_rate_seen = functools.lru_cache(maxsize=64)(_rate)
_currency_seen = functools.lru_cache(maxsize=64)(parse_currency)


class _FastRow:
    """Reads a detail row with the checks of WechatBill._exact but without a call per value; answers
    None for anything it is not sure of (the exact path then decides), so it can never accept what the
    exact path refuses. Column totals are kept here and flushed into the bill's before the exact path
    or the summary reads them."""

    def __init__(self, header: Header, totals: dict[str, int], legacy: bool) -> None:
        ix = header.index
        names = [c for c in totals if c in header]  # the columns the exact path totals, in its order
        self.summed = [(ix[c], _fee_seen if c == FEE else _money_seen) for c in names]
        self.names = names
        self.acc = [0] * len(names)
        self.pay_k = names.index("总金额" if legacy else "应结订单金额")
        self.fee_k = names.index(FEE)
        self.ref_k = names.index("退款金额") if "退款金额" in names else None
        self.refunds = all(c in ix for c in ("商户退款单号", "退款金额", "退款状态")) and self.ref_k is not None
        self.status, self.our, self.party = ix["交易状态"], ix["商户订单号"], ix["微信订单号"]
        self.currency, self.time, self.rate = ix["货币种类"], ix["交易时间"], ix.get("费率")
        self.refund_no, self.refund_status = ix.get("商户退款单号", 0), ix.get("退款状态", 0)
        self.refund_time = ix.get("退款申请时间", self.time)

    def read(self, v: list[str], line_no: int) -> Row | None:
        try:
            got = [convert(v[i]) for i, convert in self.summed]
            status = v[self.status]
            if status == "REFUND":
                if not self.refunds or v[self.refund_status] not in REFUND_STATUSES or not v[self.our]:
                    return None
                kind, our, ref, status = "REFUND", v[self.refund_no], v[self.our], v[self.refund_status]
                amount, when = got[self.ref_k], v[self.refund_time]  # type: ignore[index]
            elif status in PAYMENT_STATUSES:
                kind, our, ref, amount, when = "PAYMENT", v[self.our], None, got[self.pay_k], v[self.time]
            else:
                return None
            party = v[self.party]
            if amount <= 0 or not our or not party:
                return None
            if self.rate is not None:
                _rate_seen(v[self.rate])
            currency = _currency_seen(v[self.currency])
            _time_seen(when)
        except ValueError:
            return None
        self.acc = list(map(operator.add, self.acc, got))
        return (kind, line_no, our, ref, party, status, amount, got[self.fee_k], currency, when + "+08:00")

    def flush(self, totals: dict[str, int]) -> None:
        for name, value in zip(self.names, self.acc, strict=True):
            totals[name] += value
        self.acc = [0] * len(self.names)


class WechatBill(StatementFile):
    source = Source.WECHAT

    def __init__(self, data: Input) -> None:
        super().__init__(data)
        self.legacy = False

    def __iter__(self) -> Iterator[StatementLine]:
        for r in self.rows():
            when = parse_local_time(r[9][:19])
            yield StatementLine(Source.WECHAT, LineKind(r[0]), r[1], *r[2:6], r[6], r[7], r[8], when)

    def rows(self) -> Iterator[Row]:
        """The lines as plain tuples (see domain.recon.stream.Row), validated exactly as __iter__'s:
        what a loader needs, without an object per row. Each row is first read by a fast path that
        only accepts what the exact path below accepts; a row it cannot take is read again by the
        exact path, which refuses it with the line, column and reason (or reads it, if it was fine)."""
        records = Records(text_lines(self._data, "utf-8-sig"))
        first = next(records, None)
        if first is None:
            raise StatementRefused(1, None, "empty file: no header")
        self.legacy = "总金额" in first and "应结订单金额" not in first
        header = Header(first, (*REQUIRED, "总金额" if self.legacy else "应结订单金额"), records.line_no)
        summary_map = SUMMARY_LEGACY if self.legacy else SUMMARY_NEW
        totals = {c: 0 for c in summary_map.values() if c}
        fast = _FastRow(header, totals, self.legacy)
        count = 0
        width = len(header.names)
        while (item := records.next_plain()) is not None:
            line_no = records.line_no
            if isinstance(item, str) and item.startswith("`") and item.count(",") == item.count(",`"):
                values = item[1:].split(",`")  # a plain line, every value backticked: split at the ticks
                if len(values) != width:
                    header.check_width(values, line_no)
            else:
                record = item.split(",") if isinstance(item, str) and item else item or []
                if not record:
                    raise StatementRefused(line_no, None, "blank line inside the details")
                if not record[0].startswith("`"):  # the summary header: details are over
                    fast.flush(totals)
                    self.summary = self._summary(records, record, summary_map, totals, count)
                    return
                if len(record) != width:
                    header.check_width(record, line_no)
                values = _unticked(record, line_no, header.names)
            row = fast.read(values, line_no)
            if row is None:
                fast.flush(totals)
                row = self._exact(values, header, line_no, totals)
            count += 1
            yield row
        raise StatementRefused(records.line_no + 1, None, "truncated: the file ends without its summary")

    def _exact(self, values: list[str], header: Header, line_no: int, totals: dict[str, int]) -> Row:
        for column in totals:
            if column in header:
                convert = _fee if column == FEE else _money
                totals[column] += field(values, header, column, line_no, convert)
        return row_of(self._line(values, header, line_no))

    def _line(self, v: list[str], h: Header, line_no: int) -> StatementLine:
        status = field(v, h, "交易状态", line_no, nonempty)
        refund = status == "REFUND"
        if not refund and status not in PAYMENT_STATUSES:
            raise StatementRefused(line_no, "交易状态", f"unknown status {status!r}")
        if "费率" in h:
            field(v, h, "费率", line_no, _rate)
        when = "退款申请时间" if refund and "退款申请时间" in h else "交易时间"
        if refund:
            for column in ("商户退款单号", "退款金额", "退款状态"):
                if column not in h:
                    raise StatementRefused(line_no, column, "a refund row in a layout without this column")
            refund_status = field(v, h, "退款状态", line_no, nonempty)
            if refund_status not in REFUND_STATUSES:
                raise StatementRefused(line_no, "退款状态", f"unknown refund status {refund_status!r}")
        amount_column = "退款金额" if refund else ("总金额" if self.legacy else "应结订单金额")
        return StatementLine(
            source=Source.WECHAT,
            kind=LineKind.REFUND if refund else LineKind.PAYMENT,
            line_no=line_no,
            our_no=field(v, h, "商户退款单号" if refund else "商户订单号", line_no, nonempty),
            order_ref=field(v, h, "商户订单号", line_no, nonempty) if refund else None,
            party_no=field(v, h, "微信订单号", line_no, nonempty),
            status=refund_status if refund else status,
            amount_minor=field(v, h, amount_column, line_no, parse_positive_minor),
            fee=field(v, h, FEE, line_no, _fee),
            currency=field(v, h, "货币种类", line_no, parse_currency),
            occurred_at=field(v, h, when, line_no, parse_local_time),
        )

    def _summary(
        self, records: Records, names: list[str], summary_map: dict[str, str | None], totals: dict[str, int], count: int
    ) -> StatementSummary:
        header, row, line_no = summary_row(records, names, summary_map)
        values = _unticked(row, line_no, header.names)
        for name, column in summary_map.items():
            if column is None:
                found = field(values, header, name, line_no, parse_count)
                expected = count
            else:
                found = field(values, header, name, line_no, _fee if column == FEE else _money)
                expected = totals[column]
            if found != expected:
                shown = (
                    str(expected) if column is None else format_decimal(expected, FEE_DECIMALS if column == FEE else 2)
                )
                raise StatementRefused(
                    line_no, name, f"the summary says {values[header.index[name]]}, the rows add up to {shown}"
                )
        nothing_after(records)
        refund_total = totals["退款金额"]
        return StatementSummary(
            source=Source.WECHAT,
            count=count,
            payment_minor=totals["总金额" if self.legacy else "应结订单金额"],
            refund_minor=refund_total,
            fee=totals[FEE],
        )


def parse_wechat(data: Input) -> WechatBill:
    return WechatBill(data)
