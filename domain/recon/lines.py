"""One line of a party's statement, in the platform's terms, and the file's own totals.

Money is exact: amounts are positive integer minor units (fen); a line's direction is its ``kind``,
never a sign. Fees are signed integers in FEE_UNITS_PER_MINOR-ths of the minor unit (for CNY:
thousandths of a fen, i.e. 1e-5 yuan), because WeChat Pay prints 手续费 with 5 decimals of yuan and
rounding it to the fen would hide exactly the differences a FEE_MISMATCH looks for. A fee the party
charged is positive; a fee it gave back (on a refund) is negative.
"""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass
from datetime import date, datetime, timedelta, timezone
from enum import StrEnum

# Statements are written in China's business day; the zone has no DST, so a fixed offset is exact
# and needs no tz database.
SHANGHAI = timezone(timedelta(hours=8), "Asia/Shanghai")
FEE_UNITS_PER_MINOR = 1000
FEE_DECIMALS = 5  # of the major unit: 2 for the minor unit + 3 for FEE_UNITS_PER_MINOR


class Source(StrEnum):
    WECHAT = "wechat"
    ALIPAY = "alipay"
    BANK = "bank"


class LineKind(StrEnum):
    PAYMENT = "PAYMENT"
    REFUND = "REFUND"
    PAYOUT = "PAYOUT"


@dataclass(frozen=True, slots=True)
class StatementLine:
    source: Source
    kind: LineKind
    line_no: int  # physical line in the file (1-based), so finance can find it
    our_no: str  # payment no. (商户订单号), refund no. (商户退款单号 / 退款批次号), or payout no.
    order_ref: str | None  # refunds: the original 商户订单号 (our payment number); else None
    party_no: str  # 微信订单号 / 支付宝交易号 / bank reference ("" for a failed payout)
    status: str  # as the file says it: SUCCESS / REFUND / REVOKED, 交易 / 退款, PAID / FAILED
    amount_minor: int  # > 0
    fee: int  # FEE_UNITS_PER_MINOR-ths of the minor unit, signed (see module doc)
    currency: str
    occurred_at: datetime  # aware, Asia/Shanghai


@dataclass(frozen=True, slots=True)
class StatementSummary:
    """What the file itself claims in its summary rows; a parser has already checked it against the
    sum of its lines when it hands this out."""

    source: Source
    count: int
    payment_minor: int = 0  # payments (WeChat 应结订单总金额, Alipay 交易合计 商家实收)
    refund_minor: int = 0  # refunds, positive
    payout_paid_minor: int = 0
    payout_failed_minor: int = 0
    fee: int = 0  # FEE_UNITS_PER_MINOR-ths of the minor unit, signed


class StatementRefused(ValueError):
    """A malformed, truncated or self-contradicting statement: where (line, column) and why."""

    def __init__(self, line: int | None, column: str | None, reason: str) -> None:
        self.line = line
        self.column = column
        self.reason = reason
        where = ", ".join(p for p in (f"line {line}" if line else "", f"column {column}" if column else "") if p)
        super().__init__(f"{where}: {reason}" if where else reason)


# ASCII digits only: ``\d`` would also take full-width and other scripts' digits.
_DECIMAL = re.compile(r"(-?)([0-9]+)(?:\.([0-9]+))?")
_COUNT = re.compile(r"[0-9]{1,12}")
_CURRENCY = re.compile(r"[A-Z]{3}")


# Bills repeat the same few values ("0.00", the same price, the same fee) on most rows: caching the
# pure conversion keeps a million-row file from paying for the regex a few million times.
@functools.lru_cache(maxsize=65_536)
def parse_decimal(text: str, decimals: int, *, signed: bool = False) -> int:
    """A decimal string as an exact integer count of 10**-decimals (``"1.5", 2`` → 150). Refuses an
    empty value, more decimals than allowed, a sign where none is allowed, exponents, spaces, ``+``.
    Fewer decimals are fine: real files print ``0`` and ``0.0`` for zero. Raises ValueError."""
    m = _DECIMAL.fullmatch(text)
    if m is None:
        raise ValueError(f"{text!r} is not a decimal number")
    sign, whole, frac = m.group(1), m.group(2), m.group(3) or ""
    if sign and not signed:
        raise ValueError(f"{text!r} must not carry a sign")
    if len(frac) > decimals:
        raise ValueError(f"{text!r} has more than {decimals} decimals")
    value = int(whole) * 10**decimals + int(frac.ljust(decimals, "0") or "0")
    return -value if sign else value


def parse_count(text: str) -> int:
    """A row count; unlike int() it refuses spaces, signs, underscores and non-ASCII digits."""
    if not _COUNT.fullmatch(text):
        raise ValueError(f"{text!r} is not a count")
    return int(text)


def parse_positive_minor(text: str) -> int:
    """An unsigned amount of the major unit with up to 2 decimals, in minor units, above zero."""
    value = parse_decimal(text, 2)
    if value <= 0:
        raise ValueError(f"{text!r} is not a positive amount")
    return value


def parse_currency(text: str) -> str:
    if not _CURRENCY.fullmatch(text):
        raise ValueError(f"{text!r} is not an ISO currency")
    return text


def format_decimal(value: int, decimals: int) -> str:
    """The inverse of parse_decimal, always with exactly ``decimals`` decimals (writers use it)."""
    sign = "-" if value < 0 else ""
    whole, frac = divmod(abs(value), 10**decimals)
    return f"{sign}{whole}.{frac:0{decimals}d}" if decimals else f"{sign}{whole}"


_LOCAL_TIME = re.compile(r"([0-9]{4})-([0-9]{2})-([0-9]{2}) ([0-9]{2}):([0-9]{2}):([0-9]{2})")


def parse_local_time(text: str) -> datetime:
    """A wall-clock time as statements print it (``YYYY-MM-DD HH:MM:SS``, Asia/Shanghai) as an aware
    datetime. Matched by hand: strptime would be the slowest step of parsing a large bill."""
    m = _LOCAL_TIME.fullmatch(text)
    try:
        if m is None:
            raise ValueError("wrong shape")
        y, mo, d, h, mi, sec = map(int, m.groups())
        return datetime(y, mo, d, h, mi, sec, tzinfo=SHANGHAI)
    except ValueError as exc:
        raise ValueError(f"{text!r} is not a time YYYY-MM-DD HH:MM:SS ({exc})") from None


def business_day_bounds(day: date) -> tuple[datetime, datetime]:
    """[start, end) of a business day in Asia/Shanghai, as aware datetimes."""
    start = datetime(day.year, day.month, day.day, tzinfo=SHANGHAI)
    return start, start + timedelta(days=1)
