"""The plain SQL baseline of `bench recon`: the same bill rows COPYed into a scratch table shaped like
the staging table, and one FULL OUTER JOIN of its payments against the platform's captures (the
smallest step any reconciliation must take: every row meets its counterpart once). The COPY data is
rendered before the clock starts, so the baseline is PostgreSQL's work alone."""

from __future__ import annotations

import time
from typing import Any

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from ops.bench.recon_data import Plan, bill_lines

SCRATCH = "bench_recon_lines"
_JOIN = f"""
SELECT count(*) FROM (SELECT * FROM {SCRATCH} WHERE kind = 'PAYMENT') l
FULL OUTER JOIN (SELECT * FROM captures WHERE channel = 'wechat') c ON c.payment_no = l.our_no
WHERE l.our_no IS NULL OR c.payment_no IS NULL OR l.amount_minor <> c.amount_minor
"""


def _rendered(plan: Plan) -> bytes:
    out = []
    for n, x in enumerate(bill_lines(plan), start=2):
        ref = x.order_ref or "\\N"
        out.append(
            f"0\t{n}\t{x.kind.value}\t{x.our_no}\t{ref}\t{x.party_no}\t{x.status}\t{x.amount_minor}\t{x.fee}\t"
            f"{x.currency}\t{x.occurred_at.isoformat()}\n"
        )
    return "".join(out).encode()


async def run_baseline(engine: AsyncEngine, plan: Plan) -> float:
    """Seconds for COPY plus the join (with its commit), the scratch table dropped again."""
    data = _rendered(plan)
    async with engine.begin() as conn:
        await conn.execute(text(f"DROP TABLE IF EXISTS {SCRATCH}"))
        await conn.execute(text(f"CREATE TABLE {SCRATCH} (LIKE recon_statement_lines INCLUDING INDEXES)"))
    try:
        started = time.perf_counter()
        async with engine.begin() as conn:
            raw = await conn.get_raw_connection()
            pg: Any = raw.driver_connection
            columns = (
                "run_id, line_no, kind, our_no, order_ref, party_no, status, amount_minor, fee, currency, occurred_at"
            )
            async with pg.cursor() as cur, cur.copy(f"COPY {SCRATCH} ({columns}) FROM STDIN") as copy:
                for i in range(0, len(data), 1 << 20):
                    await copy.write(data[i : i + (1 << 20)])
            await conn.execute(text(f"ANALYZE {SCRATCH}"))
            (await conn.execute(text(_JOIN))).scalar_one()
        return time.perf_counter() - started
    finally:
        async with engine.begin() as conn:
            await conn.execute(text(f"DROP TABLE IF EXISTS {SCRATCH}"))
