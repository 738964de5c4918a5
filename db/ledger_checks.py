"""The ledger against the business records it books (internal reconciliation, 账务 against 业务).

The trial balance proves the ledger agrees with itself; these prove it agrees with what the platform
says happened: a refund marked paid has exactly its posting, an order's refunded amount is the sum of
its paid refunds, a capture's posting carries its amount, a merchant's withdrawing balance is exactly
its frozen withdrawals, its available balance is what approved statements settled to it less what it
withdrew (not rejected or failed) and what refunds after settlement took back from it, and escrow
holds exactly what was captured for orders, less what was refunded from it and what approved
statements released, and the platform's marketing holds exactly the orders' subsidies less what their
refunds gave back. Each business record and its posting are written in one transaction and each
check is one statement (one snapshot), so they hold at every instant, also while flows are running.

A channel's clearing account is checked against what the channel itself says it holds
(`channel_disagreements`), as a whole or for some payments only (`payment_channel_disagreements`): that
view comes from outside, so the caller fetches it."""

from __future__ import annotations

from typing import TypeVar

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from domain.accounts import ESCROW, MARKETING, channel_clearing
from domain.ledger import TxCode

_Key = TypeVar("_Key", tuple[str, str], tuple[str, str, str])

_ENTRY_AMOUNT = "(SELECT sum(amount_minor) FROM journal_lines WHERE entry_id = e.id AND side = 'D')"
_PAID_REFUND = "r.status IN ('SUCCEEDED', 'MANUAL_PAID')"
_FROZEN = "w.status IN ('PENDING_APPROVAL', 'QUEUED', 'SUBMITTED', 'UNKNOWN')"
_ACCOUNT = "a.code = concat('merchant', chr(58), m.id, chr(58), '{}')"

CHECKS = {
    "a refund marked paid without its posting, or a posting on a refund not paid": f"""
        SELECT r.refund_no, r.status, r.amount_minor, e.id AS entry, {_ENTRY_AMOUNT} AS booked
        FROM refunds r LEFT JOIN journal_entries e ON e.id = r.ledger_entry_id
        WHERE ({_PAID_REFUND}) <> (e.id IS NOT NULL)
           OR (e.id IS NOT NULL AND (e.reference <> r.refund_no OR {_ENTRY_AMOUNT} < r.amount_minor))
    """,
    "an order whose refunded amount is not the sum of its paid refunds": f"""
        SELECT o.order_no, o.refunded_minor, coalesce(sum(r.amount_minor), 0) AS paid_back
        FROM orders o
        LEFT JOIN refunds r ON r.order_no = o.order_no AND {_PAID_REFUND}
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
    "a merchant whose withdrawing balance is not its frozen withdrawals": f"""
        SELECT m.id, a.balance_minor AS withdrawing, frozen.amount AS frozen
        FROM merchants m
        JOIN ledger_accounts a ON {_ACCOUNT.format("withdrawing")}
        CROSS JOIN LATERAL (SELECT coalesce(sum(w.amount_minor), 0) AS amount FROM withdrawals w
                            WHERE w.merchant_id = m.id AND w.currency = a.currency AND {_FROZEN}) frozen
        WHERE a.balance_minor <> frozen.amount
    """,
    # Reported as the difference, like escrow: a test that posts raw entries on purpose leaves a constant.
    "a merchant whose available is not settled − withdrawn − clawed back by refunds after settlement": f"""
        SELECT m.id, a.currency,
               (a.balance_minor - settled.amount + withdrawn.amount + clawed.amount)::bigint AS available_minus_records
        FROM merchants m
        JOIN ledger_accounts a ON {_ACCOUNT.format("available")}
        CROSS JOIN LATERAL (SELECT coalesce(sum(s.net_minor + s.adjustment_minor), 0) AS amount
                            FROM settlement_statements s
                            WHERE s.merchant_id = m.id AND s.currency = a.currency
                              AND s.status = 'APPROVED' AND s.ledger_entry_id IS NOT NULL) settled
        CROSS JOIN LATERAL (SELECT coalesce(sum(w.amount_minor), 0) AS amount FROM withdrawals w
                            WHERE w.merchant_id = m.id AND w.currency = a.currency
                              AND w.status NOT IN ('REJECTED', 'FAILED')) withdrawn
        CROSS JOIN LATERAL (SELECT coalesce(sum(r.from_available_minor), 0) AS amount FROM refunds r
                            WHERE r.merchant_id = m.id AND r.currency = a.currency AND {_PAID_REFUND}) clawed
        WHERE a.balance_minor <> settled.amount - withdrawn.amount - clawed.amount
    """,
    # Deposits are the merchant's money (DEPOSIT_PAID), not escrow; a refund of a settled order is paid
    # back by the merchant and the commission (REFUND_AFTER_SETTLEMENT), not from escrow.
    "escrow that is not captured + subsidies − refunded − subsidy reversed − released by statements": f"""
        WITH moves AS (
            SELECT c.currency, c.amount_minor AS amount FROM captures c
            JOIN journal_entries e ON e.id = c.ledger_entry_id AND e.tx_code = '{TxCode.PAYMENT_CAPTURED}'
            UNION ALL
            SELECT r.currency, -r.amount_minor FROM refunds r
            JOIN journal_entries e ON e.id = r.ledger_entry_id
            WHERE {_PAID_REFUND}
              AND e.tx_code IN ('{TxCode.REFUND_BEFORE_SETTLEMENT}', '{TxCode.MANUAL_REFUND_PAID}')
            UNION ALL
            -- the platform-funded part of discounts, moved in at capture, less what refunds reversed out of
            -- escrow before settlement: for a settled order, what its line settled (refunds after
            -- settlement take the subsidy back from those it was paid to, not from escrow)
            SELECT o.currency, coalesce(l.subsidy_minor, o.subsidy_minor - o.subsidy_reversed_minor) FROM orders o
            LEFT JOIN (settlement_lines l
                       JOIN settlement_statements s ON s.cycle_id = l.cycle_id AND s.merchant_id = l.merchant_id
                            AND s.ledger_entry_id IS NOT NULL) ON l.order_no = o.order_no
            WHERE EXISTS (SELECT 1 FROM journal_entries e
                          WHERE e.reference = o.order_no AND e.tx_code = '{TxCode.PROMOTION_SUBSIDY}')
            UNION ALL
            SELECT s.currency, -(s.net_minor + s.commission_minor + s.promoter_minor)
            FROM settlement_statements s WHERE s.ledger_entry_id IS NOT NULL
        ), expected AS (SELECT currency, sum(amount) AS amount FROM moves GROUP BY currency)
        SELECT coalesce(a.currency, x.currency) AS currency,
               coalesce(a.balance_minor, 0) - coalesce(x.amount, 0) AS escrow_minus_records
        FROM (SELECT currency, balance_minor FROM ledger_accounts WHERE code = '{ESCROW}') a
        FULL JOIN expected x ON x.currency = a.currency
        WHERE coalesce(a.balance_minor, 0) <> coalesce(x.amount, 0)
    """,
    # Marketing is debited with each order's subsidy at capture and credited with what its refunds gave
    # back, before settlement (out of escrow) or after (within the clawback): the order records both.
    "marketing that is not the subsidies moved in − what refunds gave back": f"""
        WITH expected AS (
            SELECT o.currency, sum(o.subsidy_minor - o.subsidy_reversed_minor) AS amount FROM orders o
            WHERE EXISTS (SELECT 1 FROM journal_entries e
                          WHERE e.reference = o.order_no AND e.tx_code = '{TxCode.PROMOTION_SUBSIDY}')
            GROUP BY o.currency
        )
        SELECT coalesce(a.currency, x.currency) AS currency,
               coalesce(a.balance_minor, 0) - coalesce(x.amount, 0) AS marketing_minus_records
        FROM (SELECT currency, balance_minor FROM ledger_accounts WHERE code = '{MARKETING}') a
        FULL JOIN expected x ON x.currency = a.currency
        WHERE coalesce(a.balance_minor, 0) <> coalesce(x.amount, 0)
    """,
}


async def ledger_disagreements(session: AsyncSession) -> set[str]:
    """One line per disagreement found (empty when the ledger and the records agree)."""
    found: set[str] = set()
    for what, sql in CHECKS.items():
        found.update(f"{what}: {dict(row._mapping)}" for row in await session.execute(text(sql)))
    return found


async def channel_disagreements(session: AsyncSession, held: dict[tuple[str, str], int]) -> set[str]:
    """One line per (channel, currency) whose clearing account is not what the channel says it holds.

    `held` is the channels' own view, (channel, currency) → paid to it less refunded by it, for every
    channel that answered: only those channels are compared (a seed channel has no party to ask). Reported
    as the difference, so a test that moved a channel on purpose leaves a constant."""
    channels = {channel for channel, _ in held}
    rows = await session.execute(
        text("SELECT code, currency, balance_minor FROM ledger_accounts WHERE code = ANY(:codes)"),
        {"codes": [channel_clearing(c) for c in sorted(channels)]},
    )
    booked = {(str(r.code).split(":")[1], str(r.currency)): int(r.balance_minor) for r in rows}
    return _differences("a channel's clearing that is not what the channel holds", booked, held)


# What each payment moved on each channel's clearing account: the entries that reference the payment (its
# captures, a deposit) or one of its refunds (paid through the channel, before or after settlement).
_CLEARING_BY_PAYMENT = """
    WITH refs AS (
        SELECT no AS payment_no, no AS reference FROM unnest(CAST(:payments AS text[])) AS no
        UNION ALL SELECT payment_no, refund_no FROM refunds WHERE payment_no = ANY(:payments)
    )
    SELECT refs.payment_no, a.code, a.currency,
           sum(CASE WHEN l.side = 'D' THEN l.amount_minor ELSE -l.amount_minor END) AS booked
    FROM refs
    JOIN journal_entries e ON e.reference = refs.reference
    JOIN journal_lines l ON l.entry_id = e.id
    JOIN ledger_accounts a ON a.id = l.account_id AND a.code = ANY(:codes)
    GROUP BY refs.payment_no, a.code, a.currency
"""


async def payment_channel_disagreements(
    session: AsyncSession, held: dict[tuple[str, str, str], int], *, payments: set[str], channels: set[str]
) -> set[str]:
    """One line per (payment, channel, currency) of these payments whose movement on the channel's clearing
    account is not what the channel says it holds of that payment: the channel-wide comparison narrowed to
    some payments, so money other payments move meanwhile plays no part.

    `held` is the channels' own view, (payment_no, channel, currency) → paid to it less refunded by it, as
    the named `channels` answered it for these payments (a seed channel has no party to ask)."""
    rows = await session.execute(
        text(_CLEARING_BY_PAYMENT),
        {"payments": sorted(payments), "codes": [channel_clearing(c) for c in sorted(channels)]},
    )
    booked = {(str(r.payment_no), str(r.code).split(":")[1], str(r.currency)): int(r.booked) for r in rows}
    asked = {k: v for k, v in held.items() if k[0] in payments and k[1] in channels}
    return _differences("a payment's clearing movement that is not what the channel holds of it", booked, asked)


def _differences(what: str, booked: dict[_Key, int], held: dict[_Key, int]) -> set[str]:
    return {
        f"{what}: {' '.join(key)} clearing_minus_held={booked.get(key, 0) - held.get(key, 0)}"
        for key in sorted(set(booked) | set(held))
        if booked.get(key, 0) != held.get(key, 0)
    }
