"""Reading withdrawals for the API (the withdrawal and payout batch flows own every write)."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from db.models import PayoutBatch, Withdrawal
from domain.merchants import masked


def _view(w: Withdrawal, batch: PayoutBatch | None) -> dict[str, Any]:
    return {
        "withdrawal_id": w.withdrawal_id,
        "merchant_id": w.merchant_id,
        "status": w.status,
        "amount_minor": w.amount_minor,
        "currency": w.currency,
        "bank_account": {
            "account_name": w.bank_account_name,
            "account_no": masked(w.bank_account_last4),
            "bank_name": w.bank_name,
        },
        "requested_by": w.requested_by,
        "decided_by": w.decided_by,
        "decision_note": w.decision_note,
        "batch": (
            {"batch_id": batch.batch_id, "status": batch.status, "item_count": batch.item_count}
            if batch is not None
            else None
        ),
        "bank_ref": w.bank_ref,
        "failure_reason": w.failure_reason,
        "resolved_by": w.resolved_by,
        "bank_conflict": w.bank_conflict,
        "created_at": w.created_at,
        "updated_at": w.updated_at,
    }


async def withdrawal_view(session: AsyncSession, withdrawal_id: str) -> dict[str, Any] | None:
    w = await session.get(Withdrawal, withdrawal_id)
    if w is None:
        return None
    batch = await session.get(PayoutBatch, w.batch_id) if w.batch_id else None
    return _view(w, batch)


async def withdrawals(
    session: AsyncSession, *, merchant_id: str | None, status: str | None, conflict: bool = False, limit: int = 200
) -> list[dict[str, Any]]:
    q = select(Withdrawal).order_by(Withdrawal.created_at.desc()).limit(limit)
    if conflict:  # bank results that contradict the recorded outcome, for finance to settle with the bank
        q = q.where(Withdrawal.bank_conflict.is_not(None))
    if merchant_id:
        q = q.where(Withdrawal.merchant_id == merchant_id)
    if status:
        q = q.where(Withdrawal.status == status)
    return [_view(w, None) for w in (await session.execute(q)).scalars()]
