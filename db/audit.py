"""The append-only audit log of privileged decisions (a database trigger refuses edits)."""

from __future__ import annotations

from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from db.api_keys import Principal
from db.models import AuditEvent


async def record(
    session: AsyncSession, who: Principal, action: str, subject_type: str, subject_id: str, **details: Any
) -> None:
    """Write in the caller's transaction, so the decision and its record commit or fail together."""
    session.add(
        AuditEvent(
            actor_key_id=who.key_id,
            actor=who.actor,
            role=who.role.value,
            action=action,
            subject_type=subject_type,
            subject_id=subject_id,
            details=details,
        )
    )
    await session.flush()
