"""A capture's writes, run straight through the driver (db/engine.py `fetch_prepared`): every paid order
passes here once, in the flow's own task, so the ORM's per-statement CPU is worth saving."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy.ext.asyncio import AsyncSession

from db.engine import fetch_prepared

# Locked before the posting, as every writer of a payment and the ledger does (payment first).
_LOCK = "SELECT status, channel FROM payments WHERE payment_no = %(payment_no)s FOR UPDATE"

# The payment becomes SUCCEEDED with the first channel that took the money (a later capture through
# another channel leaves it as it is); the capture is recorded once per (payment, channel); the channel's
# attempts are PAID.
_CAPTURED = """
WITH paid AS (
    UPDATE payments SET status = %(succeeded)s, channel = %(channel)s, channel_txn_id = %(channel_txn_id)s,
        paid_at = %(paid_at)s, paid_after_cancel = %(after_cancel)s, ledger_entry_id = %(entry_id)s,
        updated_at = now()
    WHERE payment_no = %(payment_no)s AND status <> %(succeeded)s
), captured AS (
    INSERT INTO captures (order_no, payment_no, channel, amount_minor, currency, channel_txn_id, extra,
        ledger_entry_id)
    VALUES (%(order_no)s, %(payment_no)s, %(channel)s, %(amount_minor)s, %(currency)s, %(channel_txn_id)s,
        %(extra)s, %(entry_id)s)
    ON CONFLICT (payment_no, channel) DO NOTHING
), attempts AS (
    UPDATE payment_attempts SET status = %(attempt_paid)s
    WHERE payment_no = %(payment_no)s AND channel = %(channel)s
)
SELECT 1 AS done
"""


@dataclass(frozen=True)
class PaymentState:
    status: str
    channel: str | None


async def lock_payment(session: AsyncSession, payment_no: str) -> PaymentState | None:
    row = await fetch_prepared(session, _LOCK, {"payment_no": payment_no})
    return None if row is None else PaymentState(row.status, row.channel)


async def record_capture(
    session: AsyncSession,
    *,
    payment_no: str,
    order_no: str,
    channel: str,
    channel_txn_id: str | None,
    amount_minor: int,
    currency: str,
    after_cancel: bool,
    extra: bool,
    entry_id: int,
    paid_at: datetime,
    succeeded: str,
    attempt_paid: str,
) -> None:
    await fetch_prepared(
        session,
        _CAPTURED,
        {
            "payment_no": payment_no,
            "order_no": order_no,
            "channel": channel,
            "channel_txn_id": channel_txn_id,
            "amount_minor": amount_minor,
            "currency": currency,
            "after_cancel": after_cancel,
            "extra": extra,
            "entry_id": entry_id,
            "paid_at": paid_at,
            "succeeded": succeeded,
            "attempt_paid": attempt_paid,
        },
    )
