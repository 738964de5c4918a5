"""Reading stored callback notifications for the API."""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from db.models import InboundNotification


async def refused(session: AsyncSession, *, subject_ref: str | None, limit: int) -> Sequence[InboundNotification]:
    """Notifications refused after their signature verified, newest first."""
    q = select(InboundNotification).where(InboundNotification.refused_reason.is_not(None))
    if subject_ref:
        q = q.where(InboundNotification.subject_ref == subject_ref)
    return (await session.execute(q.order_by(InboundNotification.id.desc()).limit(limit))).scalars().all()
