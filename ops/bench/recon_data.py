"""The day `bench recon` reconciles: the platform's payments and refunds (seeded set-based in SQL) and
WeChat Pay's ALL bill of the same day (written by the sandbox's own writer), with discrepancies of
every type planted in known places.

Both sides follow one deterministic plan, so the SQL that seeds the platform and the Python that writes
the bill agree row for row without either reading the other. Payment i is `BP{i:09d}` (amount, second
of the day and channel transaction id are functions of i); every ninth payment (i % 9 == 4) has a
refund `BR{i:09d}` of half its amount. Plants are spaced `stride` payments apart, one residue mod 9 per
type, so no two plants (and no plant and a refund) touch the same payment:

| residue / place | planted | the bill | the platform |
|---|---|---|---|
| i % stride == 0 | SHORT | row left out | captured |
| i % stride == 1 | AMOUNT_MISMATCH | amount + 1 fen | captured |
| i % stride == 2 | DUPLICATE_PAYMENT | the row twice (two transaction ids) | captured once |
| i % stride == 3 | FEE_MISMATCH | fee + 1 fen | captured |
| i % stride == 5 | DUPLICATE_PAYMENT | one row | captured through Alipay too (the WeChat capture is `extra`) |
| i % stride == 6 | LONG | an extra row `BL{j:09d}` after it | never heard of it |
| refund r % rstride == 0 | STATUS_MISMATCH | refund SUCCESS | refund PROCESSING |
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date, timedelta

from domain.money import apply_bps
from domain.recon.lines import FEE_UNITS_PER_MINOR, LineKind, Source, StatementLine, business_day_bounds

RATE_BP = 60  # the fee rate the worker checks against (BACKOFFICE_RECON_FEE_RATE_BP's default for WeChat)
SECONDS = 86_399  # a row's second of the day is i * SECONDS // payments: all inside the business day
SHORT, AMOUNT, DUP, FEE, DUP_CROSS, LONG = 0, 1, 2, 3, 5, 6
REFUNDED = 4  # i % 9: payments that have a refund


@dataclass(frozen=True)
class Plan:
    day: date
    payments: int  # the platform's captured payments
    per_type: int  # plants of each kind (DUPLICATE_PAYMENT gets two kinds)

    @classmethod
    def for_lines(cls, lines: int, day: date) -> Plan:
        per_type = max(1, lines // 6000)  # about 0.1 % of the bill in all, every type present
        payments = max(9 * 9 * per_type, -(-(lines - per_type) * 9 // 10))
        return cls(day, payments, per_type)

    @property
    def refunds(self) -> int:
        return (self.payments - REFUNDED + 8) // 9

    @property
    def stride(self) -> int:
        return 9 * (self.payments // (9 * self.per_type))

    @property
    def rstride(self) -> int:
        return self.refunds // self.per_type

    @property
    def lines(self) -> int:
        return self.payments + self.refunds + self.per_type  # − SHORT + duplicate rows + LONG rows

    def planted(self, i: int) -> int | None:
        """The kind of plant on payment i (a residue of the table above), or None."""
        return i % self.stride if i // self.stride < self.per_type and i % self.stride in (0, 1, 2, 3, 5, 6) else None

    def expected(self) -> set[tuple[str, str]]:
        """(type, our number) of every discrepancy the run must record, and no other."""
        types = {SHORT: "SHORT", AMOUNT: "AMOUNT_MISMATCH", DUP: "DUPLICATE_PAYMENT", FEE: "FEE_MISMATCH"}
        types[DUP_CROSS] = "DUPLICATE_PAYMENT"
        found = set()
        for j in range(self.per_type):
            for residue, kind in types.items():
                found.add((kind, payment_no(j * self.stride + residue)))
            found.add(("LONG", long_no(j)))
            found.add(("STATUS_MISMATCH", refund_no(9 * j * self.rstride + REFUNDED)))
        return found


def payment_no(i: int) -> str:
    return f"BP{i:09d}"


def refund_no(i: int) -> str:
    return f"BR{i:09d}"


def long_no(j: int) -> str:
    return f"BL{j:09d}"


def amount(i: int) -> int:
    return 100 + (i * 7919) % 49_900


def txn(i: int) -> str:
    return f"42000{i:015d}"


def _fee(minor: int) -> int:
    return apply_bps(minor, RATE_BP) * FEE_UNITS_PER_MINOR


def bill_lines(plan: Plan) -> Iterator[StatementLine]:
    """The bill's rows in time order, lazily (a million rows never sit in memory at once)."""
    start, _ = business_day_bounds(plan.day)
    for i in range(plan.payments):
        at = start + timedelta(seconds=i * SECONDS // plan.payments)
        plant = plan.planted(i)
        no, a = payment_no(i), amount(i)
        if plant != SHORT:
            billed = a + 1 if plant == AMOUNT else a
            fee = _fee(billed) + (FEE_UNITS_PER_MINOR if plant == FEE else 0)
            yield StatementLine(Source.WECHAT, LineKind.PAYMENT, 0, no, None, txn(i), "SUCCESS", billed, fee, "CNY", at)
            if plant == DUP:
                yield StatementLine(
                    Source.WECHAT, LineKind.PAYMENT, 0, no, None, txn(i) + "2", "SUCCESS", a, fee, "CNY", at
                )
        if plant == LONG:
            j = i // plan.stride
            yield StatementLine(
                Source.WECHAT, LineKind.PAYMENT, 0, long_no(j), None, f"43000{j:015d}", "SUCCESS", a, _fee(a), "CNY", at
            )
        if i % 9 == REFUNDED:
            r = a // 2
            yield StatementLine(
                Source.WECHAT, LineKind.REFUND, 0, refund_no(i), no, txn(i), "SUCCESS", r, -_fee(r), "CNY", at
            )


# The same plan in SQL. Parameters: :n (payments), :stride, :k (per type), :rstride, :start (aware).
_AT = ":start + make_interval(secs => (i::bigint * 86399 / :n)::int)"
_AMOUNT = "100 + (i::bigint * 7919) % 49900"
_NO = "lpad(i::text, 9, '0')"
_CROSS = f"(i % :stride = {DUP_CROSS} AND i / :stride < :k)"

SEED = [
    f"""INSERT INTO payments (payment_no, order_no, merchant_id, amount_minor, currency, status, channel,
                              channel_txn_id, paid_at, paid_after_cancel)
        SELECT 'BP' || {_NO}, 'BO' || {_NO}, 'bench-merchant', {_AMOUNT}, 'CNY', 'SUCCEEDED', 'wechat',
               '42000' || lpad(i::text, 15, '0'), {_AT}, false
        FROM generate_series(0, :n - 1) i""",
    # ledger_entry_id 0: the bench's day has no postings (the ledger is not what it measures).
    f"""INSERT INTO captures (order_no, payment_no, channel, amount_minor, currency, channel_txn_id, extra,
                              ledger_entry_id)
        SELECT 'BO' || {_NO}, 'BP' || {_NO}, 'wechat', {_AMOUNT}, 'CNY', '42000' || lpad(i::text, 15, '0'),
               {_CROSS}, 0
        FROM generate_series(0, :n - 1) i
        UNION ALL
        SELECT 'BO' || {_NO}, 'BP' || {_NO}, 'alipay', {_AMOUNT}, 'CNY', 'ali' || {_NO}, false, 0
        FROM generate_series(0, :n - 1) i WHERE {_CROSS}""",
    f"""INSERT INTO refunds (refund_no, order_no, payment_no, capture_id, channel, merchant_id, amount_minor,
                             currency, reason, origin, status, requested_by, created_at, updated_at)
        SELECT 'BR' || {_NO}, c.order_no, c.payment_no, c.id, 'wechat', 'bench-merchant', c.amount_minor / 2,
               'CNY', 'bench', 'API',
               CASE WHEN (i / 9) % :rstride = 0 AND (i / 9) / :rstride < :k THEN 'PROCESSING' ELSE 'SUCCEEDED' END,
               'bench', {_AT}, {_AT}
        FROM generate_series(0, :n - 1) i
        JOIN captures c ON c.payment_no = 'BP' || {_NO} AND c.channel = 'wechat'
        WHERE i % 9 = {REFUNDED}""",
    "ANALYZE payments",
    "ANALYZE captures",
    "ANALYZE refunds",
]


def seed_params(plan: Plan) -> dict[str, object]:
    start, _ = business_day_bounds(plan.day)
    return {"n": plan.payments, "stride": plan.stride, "k": plan.per_type, "rstride": plan.rstride, "start": start}
