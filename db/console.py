"""The console's own records and reads: signed-in sessions, and the few queue reads the API has no list
endpoint for (applications waiting for an auditor, manual refund transfers waiting for finance, the
orders-per-day chart). Every decision the console takes goes through the API itself."""

from __future__ import annotations

import hashlib
import secrets
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import delete, select, text
from sqlalchemy.ext.asyncio import AsyncSession

from db.models import ApiKey, ConsoleSession, Merchant, Refund
from domain.crypto import FieldCipher
from domain.merchants import MerchantStatus
from domain.refunds import RefundStatus


def _hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


async def open_session(
    session: AsyncSession, key_id: int, api_key: str, cipher: FieldCipher, lifetime_seconds: int
) -> tuple[str, str]:
    """A new console session for the holder of `api_key`: (cookie token, CSRF token)."""
    token, csrf = secrets.token_urlsafe(32), secrets.token_urlsafe(32)
    session.add(
        ConsoleSession(
            token_hash=_hash(token),
            key_id=key_id,
            api_key_enc=cipher.encrypt(api_key),
            csrf=csrf,
            expires_at=datetime.now(UTC) + timedelta(seconds=lifetime_seconds),
        )
    )
    await session.flush()
    return token, csrf


async def find_session(session: AsyncSession, token: str) -> tuple[ConsoleSession, ApiKey] | None:
    """The live session of a cookie token: not expired, its key not revoked since."""
    row = (
        await session.execute(
            select(ConsoleSession, ApiKey)
            .join(ApiKey, ApiKey.id == ConsoleSession.key_id)
            .where(
                ConsoleSession.token_hash == _hash(token),
                ConsoleSession.expires_at > datetime.now(UTC),
                ApiKey.revoked_at.is_(None),
            )
        )
    ).one_or_none()
    return None if row is None else (row[0], row[1])


async def close_session(session: AsyncSession, token: str) -> None:
    await session.execute(delete(ConsoleSession).where(ConsoleSession.token_hash == _hash(token)))


async def applications_in_review(session: AsyncSession, limit: int = 200) -> list[dict[str, Any]]:
    """Merchants waiting for a first or second review, oldest first."""
    waiting = (MerchantStatus.IN_REVIEW.value, MerchantStatus.SECOND_REVIEW.value)
    rows = (
        await session.execute(
            select(Merchant).where(Merchant.status.in_(waiting)).order_by(Merchant.updated_at, Merchant.id).limit(limit)
        )
    ).scalars()
    return [
        {"merchant_id": r.id, "name": r.name, "category": r.category, "status": r.status, "since": r.updated_at}
        for r in rows
    ]


async def manual_refunds_waiting(session: AsyncSession, limit: int = 200) -> list[dict[str, Any]]:
    rows = (
        await session.execute(
            select(Refund)
            .where(Refund.status == RefundStatus.MANUAL_PENDING.value)
            .order_by(Refund.created_at, Refund.refund_no)
            .limit(limit)
        )
    ).scalars()
    return [
        {
            "refund_no": r.refund_no,
            "order_no": r.order_no,
            "amount_minor": r.amount_minor,
            "currency": r.currency,
            "since": r.created_at,
        }
        for r in rows
    ]


async def orders_per_day(session: AsyncSession, days: int, tz: str) -> list[dict[str, Any]]:
    """Orders placed and money paid per day of the platform's time zone, the last `days` days."""
    rows = await session.execute(
        text(
            """
            WITH days AS (
                SELECT generate_series(today - (:days - 1), today, interval '1 day')::date AS day
                FROM (SELECT (now() AT TIME ZONE :tz)::date AS today) t
            ), placed AS (
                SELECT (created_at AT TIME ZONE :tz)::date AS day, count(*) AS orders, sum(paid_minor) AS paid
                FROM orders
                WHERE created_at >= (SELECT min(day) FROM days)::timestamp AT TIME ZONE :tz
                GROUP BY 1
            )
            SELECT days.day, coalesce(placed.orders, 0) AS orders, coalesce(placed.paid, 0) AS paid_minor
            FROM days LEFT JOIN placed USING (day) ORDER BY days.day
            """
        ),
        {"tz": tz, "days": days},
    )
    return [{"day": r.day, "orders": int(r.orders), "paid_minor": int(r.paid_minor)} for r in rows]
