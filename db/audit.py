"""The append-only audit log of privileged decisions (a database trigger refuses edits).

A decision and its audit row commit in one transaction: API handlers that decide in their own
transaction call `record`; where a flow's activity takes the decision, that activity calls
`record_decision` in its transaction, so the row exists exactly when the decision happened.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from db.api_keys import Principal
from db.models import AuditEvent
from domain.access import actor_label


async def record(
    session: AsyncSession, who: Principal, action: str, subject_type: str, subject_id: str, **details: Any
) -> None:
    """Write in the caller's transaction, so the decision and its record commit or fail together."""
    await _write(session, who.key_id, who.actor, who.role.value, action, subject_type, subject_id, details)


async def record_decision(
    session: AsyncSession,
    *,
    person: str,
    key_id: int | None,
    role: str,
    action: str,
    subject_type: str,
    subject_id: str,
    **details: Any,
) -> None:
    """The audit row of a decision a flow carried from the API (person and key) into an activity."""
    await _write(session, key_id, actor_label(role, person, key_id), role, action, subject_type, subject_id, details)


async def _write(
    session: AsyncSession,
    key_id: int | None,
    actor: str,
    role: str,
    action: str,
    subject_type: str,
    subject_id: str,
    details: dict[str, Any],
) -> None:
    session.add(
        AuditEvent(
            actor_key_id=key_id,
            actor=actor,
            role=role,
            action=action,
            subject_type=subject_type,
            subject_id=subject_id,
            details=details,
        )
    )
    await session.flush()
