"""The ledger against the business records it books, checked after every integration test.

The trial balance proves the ledger agrees with itself; these prove it agrees with what the platform
says happened: a refund marked paid has exactly its posting, an order's refunded amount is the sum of
its paid refunds, a capture's posting carries its amount, and a merchant's withdrawing balance is
exactly its frozen withdrawals. Each business record and its posting are written in one transaction,
so these hold at every instant, also while other tests' flows are still running."""

from __future__ import annotations

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

_ENTRY_AMOUNT = "(SELECT sum(amount_minor) FROM journal_lines WHERE entry_id = e.id AND side = 'D')"

_CHECKS = {
    "a refund marked paid without its posting, or a posting on a refund not paid": f"""
        SELECT r.refund_no, r.status, r.amount_minor, e.id AS entry, {_ENTRY_AMOUNT} AS booked
        FROM refunds r LEFT JOIN journal_entries e ON e.id = r.ledger_entry_id
        WHERE (r.status IN ('SUCCEEDED', 'MANUAL_PAID')) <> (e.id IS NOT NULL)
           OR (e.id IS NOT NULL AND (e.reference <> r.refund_no OR {_ENTRY_AMOUNT} < r.amount_minor))
    """,
    "an order whose refunded amount is not the sum of its paid refunds": """
        SELECT o.order_no, o.refunded_minor, coalesce(sum(r.amount_minor), 0) AS paid_back
        FROM orders o
        LEFT JOIN refunds r ON r.order_no = o.order_no AND r.status IN ('SUCCEEDED', 'MANUAL_PAID')
            AND NOT EXISTS (SELECT 1 FROM captures c WHERE c.id = r.capture_id AND c.extra)
        WHERE EXISTS (SELECT 1 FROM captures c WHERE c.order_no = o.order_no)  -- orders the platform was paid for
        GROUP BY o.order_no, o.refunded_minor
        HAVING o.refunded_minor <> coalesce(sum(r.amount_minor), 0)
    """,
    "a capture whose posting is missing or of another amount": f"""
        SELECT c.payment_no, c.amount_minor, {_ENTRY_AMOUNT} AS booked
        FROM captures c LEFT JOIN journal_entries e ON e.id = c.ledger_entry_id
        WHERE e.id IS NULL OR e.reference <> c.payment_no OR {_ENTRY_AMOUNT} <> c.amount_minor
    """,
    "a merchant whose withdrawing balance is not its frozen withdrawals": """
        SELECT m.id, a.balance_minor AS withdrawing,
               (SELECT coalesce(sum(w.amount_minor), 0) FROM withdrawals w
                WHERE w.merchant_id = m.id AND w.currency = a.currency
                  AND w.status IN ('PENDING_APPROVAL', 'QUEUED', 'SUBMITTED', 'UNKNOWN')) AS frozen
        FROM merchants m JOIN ledger_accounts a ON a.code = concat('merchant', chr(58), m.id, chr(58), 'withdrawing')
        WHERE a.balance_minor <> (SELECT coalesce(sum(w.amount_minor), 0) FROM withdrawals w
                                  WHERE w.merchant_id = m.id AND w.currency = a.currency
                                    AND w.status IN ('PENDING_APPROVAL', 'QUEUED', 'SUBMITTED', 'UNKNOWN'))
    """,
}


async def ledger_disagreements(session: AsyncSession) -> set[str]:
    found: set[str] = set()
    for what, sql in _CHECKS.items():
        found.update(f"{what}: {dict(row._mapping)}" for row in await session.execute(text(sql)))
    return found
