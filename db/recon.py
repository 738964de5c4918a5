"""Reconciliation in PostgreSQL: a statement's lines are COPYed into staging and matched set-based
against the platform's records (captures, refunds, withdrawals) on (source, our number).

Python never walks the platform's records: each discrepancy type is one INSERT … SELECT, so a day of
a million lines costs a few joins, not a million round trips. Amounts are compared as exact integers.
A discrepancy is unique per (source, type, our number): a re-run of a day finds the same ones and adds
nothing (ON CONFLICT DO NOTHING), and a SHORT a later statement carries is resolved by that run.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import Iterable, Iterator
from datetime import date
from typing import Any

from sqlalchemy import select, text
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncSession

from db.models.recon import ReconDiscrepancy, ReconRun
from domain.recon.lines import StatementLine, business_day_bounds
from domain.recon.stream import Row

COPY_LINES = (
    "COPY recon_statement_lines (run_id, line_no, kind, our_no, order_ref, party_no, status, amount_minor,"
    " fee, currency, occurred_at) FROM STDIN"
)


async def load_lines(session: AsyncSession, run_id: int, lines: Iterable[StatementLine]) -> int:
    """Stream parsed lines into staging with COPY (see load_rows)."""
    return await load_rows(session, run_id, (_row_of(x) for x in lines))


def _row_of(x: StatementLine) -> Row:
    at = x.occurred_at.isoformat(sep=" ")
    return (x.kind.value, x.line_no, x.our_no, x.order_ref, x.party_no, x.status, x.amount_minor, x.fee, x.currency, at)


# COPY's text format gives a backslash, tab and line ending meaning; a party's value holding one is
# escaped (rare: the check is one regex search per row, the escaping only when it finds one).
_SPECIAL = re.compile(r"[\\\t\n\r]")
_ESCAPES = str.maketrans({"\\": "\\\\", "\t": "\\t", "\n": "\\n", "\r": "\\r"})
COPY_BATCH = 1 << 20  # bytes handed to the server at a time
NULL = "\\N"
LOCK_NOT_AVAILABLE = "55P03"


async def load_rows(session: AsyncSession, run_id: int, rows: Iterable[Row]) -> int:
    """Stream a statement's rows into staging with COPY, in the session's transaction, as COPY text in
    batches of about COPY_BATCH bytes: no Python object per row beyond the parser's tuple, and the
    rows are consumed as they are parsed (the parser reads the file lazily), so memory stays bounded.
    Each batch is parsed and rendered in a thread: a million rows are seconds of CPU, and the worker's
    event loop must stay free meanwhile for the heartbeats and calls of its other activities."""
    conn = await session.connection()
    raw = await conn.get_raw_connection()
    pg: Any = raw.driver_connection  # psycopg.AsyncConnection: the same connection, same transaction
    counted = [0]
    batches = _copy_text(run_id, rows, counted)
    async with pg.cursor() as cur, cur.copy(COPY_LINES) as copy:
        while (batch := await asyncio.to_thread(next, batches, None)) is not None:
            await copy.write(batch)
    return counted[0]


def _copy_text(run_id: int, rows: Iterable[Row], counted: list[int]) -> Iterator[bytes]:
    batch: list[str] = []
    size = 0
    for kind, line_no, our, ref, party, status, amount, fee, currency, at in rows:
        if _SPECIAL.search(f"{our}{ref or ''}{party}{status}{currency}"):
            our, party, status, currency = (v.translate(_ESCAPES) for v in (our, party, status, currency))
            ref = None if ref is None else ref.translate(_ESCAPES)
        nullable = NULL if ref is None else ref
        text_ = (
            f"{run_id}\t{line_no}\t{kind}\t{our}\t{nullable}\t{party}\t{status}\t{amount}\t{fee}\t{currency}\t{at}\n"
        )
        batch.append(text_)
        size += len(text_)
        counted[0] += 1
        if size >= COPY_BATCH:
            yield "".join(batch).encode()
            batch, size = [], 0
    if batch:
        yield "".join(batch).encode()


# Each candidate: (type, kind, our_no, statement_minor, platform_minor, detail). Parameters: :run,
# :source, :start, :end (the business day in Asia/Shanghai), :rate (the channel's fee in bp).
_PAYMENTS = """
    s AS (SELECT our_no, count(*) AS n, min(amount_minor) AS lo, max(amount_minor) AS hi, sum(amount_minor) AS total
          FROM recon_statement_lines WHERE run_id = :run AND kind = 'PAYMENT' GROUP BY our_no),
    sc AS (SELECT s.*, c.amount_minor AS captured, c.extra
           FROM s LEFT JOIN captures c ON c.payment_no = s.our_no AND c.channel = :source),
    pay AS (
        SELECT 'DUPLICATE_PAYMENT' AS type, 'PAYMENT' AS kind, our_no, total AS st, captured AS pf,
               CASE WHEN extra THEN 'also paid through another channel'
                    ELSE (SELECT count(DISTINCT l.party_no) FROM recon_statement_lines l
                          WHERE l.run_id = :run AND l.kind = 'PAYMENT' AND l.our_no = sc.our_no)
                         || ' charges of one payment at the channel' END AS detail
        FROM sc WHERE n > 1 OR extra
        UNION ALL
        SELECT 'LONG', 'PAYMENT', our_no, lo, NULL, 'paid at the channel, not captured by the platform'
        FROM sc WHERE captured IS NULL
        UNION ALL
        SELECT 'AMOUNT_MISMATCH', 'PAYMENT', our_no, CASE WHEN lo <> captured THEN lo ELSE hi END, captured,
               'the statement and the capture differ'
        FROM sc WHERE captured IS NOT NULL AND (lo <> captured OR hi <> captured)
        UNION ALL
        SELECT 'SHORT', 'PAYMENT', c.payment_no, NULL, c.amount_minor, 'captured, not on the statement'
        FROM captures c JOIN payments p ON p.payment_no = c.payment_no
        WHERE c.channel = :source AND p.paid_at >= :start AND p.paid_at < :end
          AND NOT EXISTS (SELECT 1 FROM recon_statement_lines l
                          WHERE l.run_id IN (SELECT id FROM seen) AND l.kind = 'PAYMENT' AND l.our_no = c.payment_no)
    )"""

_REFUNDS = """
    rs AS (SELECT l.our_no, l.amount_minor, r.status, r.amount_minor AS ours
           FROM recon_statement_lines l LEFT JOIN refunds r ON r.refund_no = l.our_no AND r.channel = :source
           WHERE l.run_id = :run AND l.kind = 'REFUND'),
    ref AS (
        SELECT 'LONG' AS type, 'REFUND' AS kind, our_no, amount_minor AS st, ours AS pf,
               coalesce('refund ' || status || ' here', 'refund unknown here') || ', succeeded at the channel'
               AS detail
        FROM rs WHERE status IS NULL OR status = 'FAILED'
        UNION ALL
        SELECT 'STATUS_MISMATCH', 'REFUND', our_no, amount_minor, ours,
               'succeeded at the channel, ' || status || ' here'
        FROM rs WHERE status IN ('PROCESSING', 'MANUAL_PENDING', 'MANUAL_PAID')
        UNION ALL
        SELECT 'AMOUNT_MISMATCH', 'REFUND', our_no, amount_minor, ours, 'the statement and the refund differ'
        FROM rs WHERE status = 'SUCCEEDED' AND amount_minor <> ours
        UNION ALL
        SELECT 'SHORT', 'REFUND', r.refund_no, NULL, r.amount_minor, 'refunded here, not on the statement'
        FROM refunds r
        WHERE r.channel = :source AND r.status = 'SUCCEEDED' AND r.created_at >= :start AND r.created_at < :end
          AND NOT EXISTS (SELECT 1 FROM recon_statement_lines l
                          WHERE l.run_id IN (SELECT id FROM seen) AND l.kind = 'REFUND' AND l.our_no = r.refund_no)
    )"""

# The fee a channel may charge is amount × rate rounded to the fen: in thousandths of a fen the exact
# fee is amount × rate_bp / 10, so rounding moves it by at most 500; anything beyond is a mismatch.
# (×10 on both sides keeps it integer.) A refund gives its share back: its fee is negative.
_FEES = """
    fee AS (
        SELECT 'FEE_MISMATCH' AS type, kind, our_no, fee AS st, amount_minor * :rate / 10 AS pf,
               'fee ' || fee || ' thousandths of a fen on ' || amount_minor || ' at ' || :rate || ' bp' AS detail
        FROM recon_statement_lines
        WHERE run_id = :run AND kind IN ('PAYMENT', 'REFUND')
          AND abs(10 * (CASE WHEN kind = 'REFUND' THEN -fee ELSE fee END) - amount_minor * :rate) > 5000
    )"""

_PAYOUTS = """
    ps AS (SELECT l.our_no, l.status AS theirs, l.amount_minor, w.status, w.amount_minor AS ours
           FROM recon_statement_lines l LEFT JOIN withdrawals w ON w.withdrawal_id = l.our_no
           WHERE l.run_id = :run AND l.kind = 'PAYOUT'),
    pay AS (
        SELECT 'LONG' AS type, 'PAYOUT' AS kind, our_no, amount_minor AS st, ours AS pf,
               'paid by the bank, unknown here' AS detail
        FROM ps WHERE theirs = 'PAID' AND status IS NULL
        UNION ALL
        SELECT 'STATUS_MISMATCH', 'PAYOUT', our_no, amount_minor, ours, theirs || ' at the bank, ' || status || ' here'
        FROM ps WHERE (theirs = 'PAID' AND status <> 'PAID') OR (theirs = 'FAILED' AND status = 'PAID')
        UNION ALL
        SELECT 'AMOUNT_MISMATCH', 'PAYOUT', our_no, amount_minor, ours, 'the statement and the payout differ'
        FROM ps WHERE theirs = 'PAID' AND status = 'PAID' AND amount_minor <> ours
        UNION ALL
        SELECT 'SHORT', 'PAYOUT', w.withdrawal_id, NULL, w.amount_minor, 'paid here, not on the statement'
        FROM withdrawals w
        WHERE w.status = 'PAID' AND w.updated_at >= :start AND w.updated_at < :end
          AND NOT EXISTS (SELECT 1 FROM recon_statement_lines l
                          WHERE l.run_id IN (SELECT id FROM seen) AND l.kind = 'PAYOUT' AND l.our_no = w.withdrawal_id)
    )"""

# A SHORT is HELD, never final on its own day: the party may bill it on a later day (paid at 23:59:59,
# on the next day's bill), and the later run that carries it resolves it below.
_RECORD = """
    found AS ({found}),
    added AS (
        INSERT INTO recon_discrepancies (run_id, source, bill_date, type, kind, our_no, statement_minor,
                                         platform_minor, detail, status)
        SELECT :run, :source, :day, type, kind, our_no, st, pf, detail,
               CASE WHEN type = 'SHORT' THEN 'HELD' ELSE 'OPEN' END
        FROM found
        ON CONFLICT (source, type, our_no) DO NOTHING
        RETURNING id
    )
SELECT type, count(*) AS n, (SELECT count(*) FROM added) AS added FROM found GROUP BY type"""

_RESOLVE_HELD = """
UPDATE recon_discrepancies d SET status = 'RESOLVED', resolved_by_run_id = :run, updated_at = now()
WHERE d.source = :source AND d.type = 'SHORT' AND d.status = 'HELD'
  AND EXISTS (SELECT 1 FROM recon_statement_lines l WHERE l.run_id = :run AND l.kind = d.kind AND l.our_no = d.our_no)
"""


# The statements a SHORT is looked for in: this run's and the day before's. The platform stamps a
# payment a moment after the channel does, so one paid at 23:59:59.9 can be on the channel's bill of the
# day before the platform's day: it was billed, it is not short.
_SEEN = """
    seen AS (SELECT :run AS id UNION SELECT id FROM recon_runs
             WHERE source = :source AND status = 'MATCHED' AND bill_date = :day - 1)"""


CLASSIFY_WORK_MEM = "64MB"


async def _analyze_staging(session: AsyncSession) -> None:
    """Statistics for the lines this transaction loaded: without them the planner expects a handful
    and joins a million rows one index lookup at a time. ANALYZE's lock lasts until commit, so a match
    of another source running at the same moment does not wait for it: it plans without (slower,
    same answer)."""
    try:
        async with session.begin_nested():
            await session.execute(text("SET LOCAL lock_timeout = '200ms'"))
            await session.execute(text("ANALYZE recon_statement_lines"))
    except DBAPIError as exc:
        if getattr(exc.orig, "sqlstate", None) != LOCK_NOT_AVAILABLE:
            raise
    await session.execute(text("SET LOCAL lock_timeout TO DEFAULT"))


def classify_sql(source: str) -> str:
    if source == "bank":
        return "WITH " + ",".join((_SEEN, _PAYOUTS)) + "," + _RECORD.format(found="SELECT * FROM pay")
    parts = ",".join((_SEEN, _PAYMENTS, _REFUNDS, _FEES))
    found = "SELECT * FROM pay UNION ALL SELECT * FROM ref UNION ALL SELECT * FROM fee"
    return "WITH " + parts + "," + _RECORD.format(found=found)


async def classify(session: AsyncSession, run_id: int, source: str, day: date, rate_bp: int) -> dict[str, int]:
    """Resolve the HELD SHORTs this statement carries, then record every difference; returns what the
    run found by type (found again on a re-run too, though nothing new is recorded then)."""
    start, end = business_day_bounds(day)
    params = {"run": run_id, "source": source, "day": day, "start": start, "end": end, "rate": rate_bp}
    await _analyze_staging(session)
    # The day's joins and aggregates are hashed in memory rather than spilled to disk in 4 MB batches.
    await session.execute(text(f"SET LOCAL work_mem = '{CLASSIFY_WORK_MEM}'"))
    resolved = (await session.execute(text(_RESOLVE_HELD), params)).rowcount  # type: ignore[attr-defined]
    rows = (await session.execute(text(classify_sql(source)), params)).all()
    counts = {str(r.type): int(r.n) for r in rows}
    if resolved:
        counts["SHORT_RESOLVED"] = int(resolved)
    return counts


# Staging rows are the working copy of a file that is kept whole in recon_files: a day's lines stay while
# later runs may look at them (a SHORT is looked for in the day before's statement too), then go. A day
# run again keeps only its latest run's lines.
_PRUNE = """
DELETE FROM recon_statement_lines l USING recon_runs r
WHERE l.run_id = r.id AND r.source = :source AND r.id <> :run
  AND (r.bill_date = :day OR r.bill_date < :day - :keep)
"""


async def prune_staging(session: AsyncSession, run_id: int, source: str, day: date, keep_days: int) -> int:
    """Drop the staged lines of this source's earlier runs of the same day and of days more than
    `keep_days` before it; returns how many rows went."""
    params = {"run": run_id, "source": source, "day": day, "keep": keep_days}
    return int((await session.execute(text(_PRUNE), params)).rowcount)  # type: ignore[attr-defined]


_PLATFORM_TOTALS = {
    "payment_minor": "SELECT coalesce(sum(c.amount_minor), 0) FROM captures c JOIN payments p USING (payment_no)"
    " WHERE c.channel = :source AND p.paid_at >= :start AND p.paid_at < :end",
    "refund_minor": "SELECT coalesce(sum(amount_minor), 0) FROM refunds WHERE channel = :source"
    " AND status = 'SUCCEEDED' AND created_at >= :start AND created_at < :end",
    "payout_paid_minor": "SELECT coalesce(sum(amount_minor), 0) FROM withdrawals WHERE :source = 'bank'"
    " AND status = 'PAID' AND updated_at >= :start AND updated_at < :end",
}


async def platform_totals(session: AsyncSession, source: str, day: date) -> dict[str, int]:
    """The platform's own totals for the business day, shown beside the statement's."""
    start, end = business_day_bounds(day)
    params = {"source": source, "start": start, "end": end}
    return {k: int((await session.execute(text(q), params)).scalar_one()) for k, q in _PLATFORM_TOTALS.items()}


async def runs(session: AsyncSession, source: str | None, bill_date: date | None, limit: int) -> list[ReconRun]:
    """Reconciliation runs, newest first."""
    q = select(ReconRun).order_by(ReconRun.id.desc()).limit(limit)
    if source is not None:
        q = q.where(ReconRun.source == source)
    if bill_date is not None:
        q = q.where(ReconRun.bill_date == bill_date)
    return list((await session.execute(q)).scalars().all())


async def discrepancies(session: AsyncSession, *, limit: int, **equal: object) -> list[ReconDiscrepancy]:
    """Discrepancies, oldest first, filtered by the columns given a value (run_id, type, status, …)."""
    q = select(ReconDiscrepancy).order_by(ReconDiscrepancy.id).limit(limit)
    for column, value in equal.items():
        if value is not None:
            q = q.where(getattr(ReconDiscrepancy, column) == value)
    return list((await session.execute(q)).scalars().all())


async def run_of_file(session: AsyncSession, source: str, day: date, sha256: str | None) -> ReconRun | None:
    """The run that already reconciled this very file of the day (an upload repeated is the same run)."""
    q = select(ReconRun).where(ReconRun.source == source, ReconRun.bill_date == day, ReconRun.file_sha256 == sha256)
    return (await session.execute(q.order_by(ReconRun.id).limit(1))).scalars().first()
