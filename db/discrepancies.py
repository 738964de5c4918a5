"""Discrepancies and their flows: the facts a discrepancy flow decides on, what it records, which flows
a reconciliation run starts or wakes, and the day's channel fees (one SQL statement each)."""

from __future__ import annotations

from datetime import date
from typing import Any

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from domain.recon.discrepancy import DiscrepancyFacts
from domain.recon.lines import FEE_UNITS_PER_MINOR

# The discrepancy, the statement line it came from (the first, for a duplicate) and the platform's
# records it is about, as they are now. A duplicate's second channel is its `extra` capture.
_FACTS = """
SELECT d.id AS discrepancy_id, d.source, d.type, d.kind, d.our_no, d.status, d.statement_minor,
       d.platform_minor, l.party_no, l.status AS statement_status,
       coalesce(l.currency, p.currency, r.currency, w.currency, 'CNY') AS currency,
       o.order_no, o.status AS order_status, p.status AS payment_status, r.status AS refund_status,
       w.status AS withdrawal_status, x.channel AS extra_channel, xr.refund_no IS NOT NULL AS extra_refunded
FROM recon_discrepancies d
LEFT JOIN LATERAL (SELECT party_no, status, currency FROM recon_statement_lines s
                   WHERE s.run_id = d.run_id AND s.kind = d.kind AND s.our_no = d.our_no
                   ORDER BY line_no LIMIT 1) l ON true
LEFT JOIN payments p ON d.kind = 'PAYMENT' AND p.payment_no = d.our_no
LEFT JOIN refunds r ON d.kind = 'REFUND' AND r.refund_no = d.our_no
LEFT JOIN orders o ON o.order_no = coalesce(p.order_no, r.order_no)
LEFT JOIN withdrawals w ON d.kind = 'PAYOUT' AND w.withdrawal_id = d.our_no
LEFT JOIN captures x ON d.kind = 'PAYMENT' AND x.payment_no = d.our_no AND x.extra
LEFT JOIN LATERAL (SELECT refund_no FROM refunds WHERE capture_id = x.id LIMIT 1) xr ON true
WHERE d.id = :id
"""


async def facts(session: AsyncSession, discrepancy_id: int) -> DiscrepancyFacts | None:
    row = (await session.execute(text(_FACTS), {"id": discrepancy_id})).mappings().first()
    return None if row is None else DiscrepancyFacts.model_validate(dict(row))


_RECORD = """
UPDATE recon_discrepancies
SET status = :status, action = :action, note = :note, decided_by = coalesce(:by, decided_by),
    ledger_entry_id = coalesce(:entry, ledger_entry_id), updated_at = now(),
    history = history || jsonb_build_array(jsonb_build_object(
        'at', now(), 'status', :status, 'action', :action, 'note', :note, 'by', :by))
WHERE id = :id AND NOT (status = :status AND action IS NOT DISTINCT FROM :action AND note = :note)
"""


async def record(
    session: AsyncSession, discrepancy_id: int, status: str, action: str, note: str, by: str | None, entry: int | None
) -> None:
    """Record a step; the same step again (an activity retried after its commit) adds nothing."""
    params = {"id": discrepancy_id, "status": status, "action": action, "note": note, "by": by, "entry": entry}
    await session.execute(text(_RECORD), params)


_OF_RUN = """
SELECT id, 'new' AS why FROM recon_discrepancies WHERE run_id = :run
UNION ALL
SELECT id, 'resolved' FROM recon_discrepancies WHERE resolved_by_run_id = :run
ORDER BY id
"""


async def of_run(session: AsyncSession, run_id: int) -> tuple[list[int], list[int]]:
    """(the discrepancies this run found first, the HELD ones a later statement of this run carried)."""
    rows = (await session.execute(text(_OF_RUN), {"run": run_id})).all()
    return [int(r.id) for r in rows if r.why == "new"], [int(r.id) for r in rows if r.why == "resolved"]


# A day's fees as the statement shows them, per currency, in thousandths of a fen rounded half-up to the
# fen once for the day (a refund's fee is negative: the channel gives its share back).
_FEES = f"""
SELECT currency, sum(fee) AS units,
       div(sum(fee) + {FEE_UNITS_PER_MINOR // 2} * sign(sum(fee)), {FEE_UNITS_PER_MINOR}) AS minor
FROM recon_statement_lines WHERE run_id = :run AND kind IN ('PAYMENT', 'REFUND') GROUP BY currency
"""


async def day_fees(session: AsyncSession, run_id: int) -> dict[str, int]:
    rows = (await session.execute(text(_FEES), {"run": run_id})).all()
    return {str(r.currency): int(r.minor) for r in rows if int(r.minor) != 0}


async def day_run(session: AsyncSession, run_id: int) -> tuple[str, date]:
    row = (await session.execute(text("SELECT source, bill_date FROM recon_runs WHERE id = :id"), {"id": run_id})).one()
    return str(row.source), row.bill_date


def csv_rows(rows: list[Any]) -> list[list[object]]:
    """A run's discrepancies as CSV rows, amounts in minor units (exact integers, never floats)."""
    head: list[object] = ["id", "run_id", "source", "bill_date", "type", "kind", "our_no", "statement_minor"]
    head += ["platform_minor", "status", "action", "note", "detail"]
    out: list[list[object]] = [head]
    for d in rows:
        row: list[object] = [d.id, d.run_id, d.source, d.bill_date, d.type, d.kind, d.our_no]
        out.append([*row, d.statement_minor, d.platform_minor, d.status, d.action or "", d.note, d.detail])
    return out
