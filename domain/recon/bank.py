"""The bank's daily payout statement (one file per value date), parsed strictly and as a stream.

Format (defined by the platform with the bank; UTF-8 without BOM, CRLF or LF, RFC 4180 quoting):

    payout_no,batch_no,amount,currency,status,bank_ref,value_date,finished_at
    W0001,B0001,150.00,CNY,PAID,bkp_0a1b2c,2026-12-01,2026-12-01 10:00:01
    W0002,B0001,20.00,CNY,FAILED,,2026-12-01,2026-12-01 10:00:02
    total_count,paid_count,paid_amount,failed_count,failed_amount
    2,1,150.00,1,20.00

``payout_no`` is the platform's payout number (the withdrawal id); ``amount`` is yuan with exactly
up to 2 decimals, unsigned; ``status`` PAID or FAILED; ``bank_ref`` is required for PAID, empty for
FAILED; ``finished_at`` is the bank's wall clock (Asia/Shanghai) and must fall on ``value_date``.
The summary header and its one row close the file; anything missing or disagreeing is refused.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import date

from domain.recon.lines import (
    LineKind,
    Source,
    StatementLine,
    StatementRefused,
    StatementSummary,
    parse_count,
    parse_currency,
    parse_decimal,
    parse_local_time,
    parse_positive_minor,
)
from domain.recon.stream import Header, Records, StatementFile, field, nonempty, nothing_after, summary_row, text_lines
from domain.recon.stream import Source as Input

BANK_COLUMNS = ["payout_no", "batch_no", "amount", "currency", "status", "bank_ref", "value_date", "finished_at"]
BANK_SUMMARY = ["total_count", "paid_count", "paid_amount", "failed_count", "failed_amount"]
STATUSES = frozenset({"PAID", "FAILED"})


def _value_date(text: str) -> date:
    # date.fromisoformat alone would also take 20261201 or 2026-W48-2.
    if len(text) != 10 or text[4] != "-" or text[7] != "-":
        raise ValueError(f"{text!r} is not a date YYYY-MM-DD")
    return date.fromisoformat(text)


def _status(text: str) -> str:
    if text not in STATUSES:
        raise ValueError(f"unknown status {text!r} (PAID or FAILED)")
    return text


class BankStatement(StatementFile):
    source = Source.BANK

    def __iter__(self) -> Iterator[StatementLine]:
        records = Records(text_lines(self._data, "utf-8"))
        first = next(records, None)
        if first is None:
            raise StatementRefused(1, None, "empty file: no header")
        header = Header(first, BANK_COLUMNS, records.line_no)
        counts = {"PAID": 0, "FAILED": 0}
        sums = {"PAID": 0, "FAILED": 0}
        for record in records:
            line_no = records.line_no
            if record[:1] == [BANK_SUMMARY[0]]:
                self.summary = self._summary(records, record, counts, sums)
                return
            header.check_width(record, line_no)
            line = self._line(record, header, line_no)
            counts[line.status] += 1
            sums[line.status] += line.amount_minor
            yield line
        raise StatementRefused(records.line_no + 1, None, "truncated: the file ends without its summary")

    @staticmethod
    def _line(r: list[str], h: Header, line_no: int) -> StatementLine:
        status = field(r, h, "status", line_no, _status)
        bank_ref = r[h.index["bank_ref"]]
        if status == "PAID" and not bank_ref:
            raise StatementRefused(line_no, "bank_ref", "a PAID payout without the bank's reference")
        finished = field(r, h, "finished_at", line_no, parse_local_time)
        if field(r, h, "value_date", line_no, _value_date) != finished.date():
            raise StatementRefused(line_no, "value_date", "is not the date the payout finished")
        return StatementLine(
            source=Source.BANK,
            kind=LineKind.PAYOUT,
            line_no=line_no,
            our_no=field(r, h, "payout_no", line_no, nonempty),
            order_ref=None,
            party_no=bank_ref,
            status=status,
            amount_minor=field(r, h, "amount", line_no, parse_positive_minor),
            fee=0,
            currency=field(r, h, "currency", line_no, parse_currency),
            occurred_at=finished,
        )

    @staticmethod
    def _summary(records: Records, names: list[str], counts: dict[str, int], sums: dict[str, int]) -> StatementSummary:
        header, row, line_no = summary_row(records, names, BANK_SUMMARY)
        expected = {
            "total_count": (parse_count, counts["PAID"] + counts["FAILED"]),
            "paid_count": (parse_count, counts["PAID"]),
            "paid_amount": (lambda t: parse_decimal(t, 2), sums["PAID"]),
            "failed_count": (parse_count, counts["FAILED"]),
            "failed_amount": (lambda t: parse_decimal(t, 2), sums["FAILED"]),
        }
        for name, (convert, total) in expected.items():
            if field(row, header, name, line_no, convert) != total:
                raise StatementRefused(line_no, name, f"the summary says {row[header.index[name]]}, the rows disagree")
        nothing_after(records)
        return StatementSummary(
            source=Source.BANK,
            count=counts["PAID"] + counts["FAILED"],
            payout_paid_minor=sums["PAID"],
            payout_failed_minor=sums["FAILED"],
        )


def parse_bank(data: Input) -> BankStatement:
    return BankStatement(data)
