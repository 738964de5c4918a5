"""Reading a statement as a stream: bytes chunks in, CSV records out, never the whole file at once.

Parsers accept an iterator of ``bytes`` chunks or a binary file object. Lines are decoded
incrementally (a multi-byte character may straddle two chunks) and handed to the ``csv`` module one
at a time, which keeps memory bounded by the longest line whatever the file's size.
"""

from __future__ import annotations

import codecs
import csv
import itertools
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterable, Iterator
from typing import Any, BinaryIO, TypeVar, cast

from domain.recon.lines import StatementLine, StatementRefused, StatementSummary

CHUNK = 1 << 16
# A statement line as plain values, for a loader: kind, line_no, our_no, order_ref, party_no, status,
# amount_minor, fee, currency, occurred_at (ISO 8601 text with its UTC offset). See lines.StatementLine.
Row = tuple[str, int, str, str | None, str, str, int, int, str, str]
Source = Iterable[bytes] | BinaryIO
T = TypeVar("T")


def chunks_of(source: Source) -> Iterator[bytes]:
    read = getattr(source, "read", None)
    if read is None:
        yield from cast(Iterable[bytes], source)
        return
    while chunk := read(CHUNK):
        yield chunk


def text_lines(source: Source, encoding: str) -> Iterator[str]:
    """Decoded physical lines, each with its line ending (csv needs it to see quoted newlines)."""
    decoder = codecs.getincrementaldecoder(encoding)("strict")
    shown = encoding.removesuffix("-sig")
    pending = ""
    line_no = 0
    for chunk in chunks_of(source):
        try:
            pending += decoder.decode(chunk)
        except UnicodeDecodeError as exc:
            at = line_no + pending.count("\n") + chunk[: max(exc.start, 0)].count(b"\n") + 1
            raise StatementRefused(at, None, f"not valid {shown}: {exc.reason}") from None
        *complete, pending = pending.split("\n")
        for line in complete:
            line_no += 1
            yield line + "\n"
    try:
        pending += decoder.decode(b"", final=True)
    except UnicodeDecodeError as exc:
        raise StatementRefused(line_no + 1, None, f"truncated {shown} character: {exc.reason}") from None
    if pending:
        yield pending


class Records:
    """CSV records with the physical line each ends on (``line_no``), for error messages."""

    def __init__(self, lines: Iterator[str]) -> None:
        self._lines = lines
        self._reader = csv.reader(lines, strict=True)
        self.line_no = 0

    def __iter__(self) -> Iterator[list[str]]:
        return self

    def __next__(self) -> list[str]:
        return self._read(self._reader)

    def _read(self, reader: Any) -> list[str]:
        # Lines may also be taken past the reader (next_plain), so the count goes by what this read took.
        before = reader.line_num
        try:
            record: list[str] = next(reader)
        except csv.Error as exc:
            raise StatementRefused(self.line_no + reader.line_num - before, None, f"malformed CSV: {exc}") from None
        self.line_no += reader.line_num - before
        return record

    def next_plain(self) -> str | list[str] | None:
        """The next record, None at the end. A plain line (no quote, carriage return or NUL before its
        line ending: csv would only split it at its commas) comes as its text without the line ending,
        for the caller to split as it likes; any other as csv reads it (it may span lines)."""
        line = next(self._lines, None)
        if line is None:
            return None
        body = line[:-2] if line.endswith("\r\n") else line[:-1] if line.endswith("\n") else line
        if '"' in body or "\r" in body or "\0" in body:
            return self._read(csv.reader(itertools.chain([line], self._lines), strict=True))
        self.line_no += 1
        return body


class Header:
    """Column positions by name: a party may add, drop or reorder columns between layouts, so values
    are looked up by header name, never by position."""

    def __init__(self, names: list[str], required: Iterable[str], line_no: int) -> None:
        self.names = [n.strip() for n in names]
        self.index = {n: i for i, n in enumerate(self.names)}
        if len(self.index) != len(self.names):
            raise StatementRefused(line_no, None, "the header names a column twice")
        missing = [n for n in required if n not in self.index]
        if missing:
            raise StatementRefused(line_no, missing[0], "the header lacks this column")

    def __contains__(self, name: str) -> bool:
        return name in self.index

    def check_width(self, record: list[str], line_no: int) -> None:
        if len(record) != len(self.names):
            raise StatementRefused(line_no, None, f"{len(record)} columns where the header has {len(self.names)}")


def summary_row(records: Records, names: list[str], required: Iterable[str]) -> tuple[Header, list[str], int]:
    """The summary header just read and the one summary row under it (refused if missing or short)."""
    header = Header(names, required, records.line_no)
    row = next(records, None)
    if not row:
        at = records.line_no + (row is None)
        raise StatementRefused(at, None, "truncated: the summary header has no summary row")
    header.check_width(row, records.line_no)
    return header, row, records.line_no


def nothing_after(records: Records) -> None:
    for extra in records:
        if any(extra):
            raise StatementRefused(records.line_no, None, "content after the summary row")


def field(record: list[str], header: Header, name: str, line_no: int, convert: Callable[[str], T]) -> T:
    """One value converted, or a refusal naming the line, the column and why."""
    raw = record[header.index[name]]
    try:
        return convert(raw)
    except (ValueError, KeyError) as exc:
        raise StatementRefused(line_no, name, str(exc) or f"bad value {raw!r}") from None


def nonempty(text: str) -> str:
    if not text:
        raise ValueError("empty value")
    return text


class StatementFile(ABC):
    """A parsed statement: iterate for its lines (once); ``summary`` is set when iteration has
    finished, after the file's own totals were checked against its rows."""

    def __init__(self, data: Source) -> None:
        self._data = data
        self.summary: StatementSummary | None = None

    @abstractmethod
    def __iter__(self) -> Iterator[StatementLine]: ...

    def rows(self) -> Iterator[Row]:
        """The lines as plain values (a parser may read them faster this way than as objects)."""
        for x in self:
            yield row_of(x)


def row_of(x: StatementLine) -> Row:
    """A statement line as the plain values staging takes (the order of `Row`)."""
    return (
        x.kind.value,
        x.line_no,
        x.our_no,
        x.order_ref,
        x.party_no,
        x.status,
        x.amount_minor,
        x.fee,
        x.currency,
        x.occurred_at.isoformat(sep=" "),
    )
