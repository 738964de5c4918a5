"""Stored responses for Idempotency-Key requests (DESIGN §5)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from enum import Enum
from typing import Any

from sqlalchemy import delete, select, update
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from db.models import IdempotencyRecord


class ClaimState(Enum):
    NEW = "new"  # first time: run the request, then complete() or release()
    REPLAY = "replay"  # done before with the same body: answer the stored response
    IN_PROGRESS = "in_progress"  # a concurrent duplicate is still running
    MISMATCH = "mismatch"  # the key was used for a different request


@dataclass(frozen=True)
class Claim:
    state: ClaimState
    record_id: int | None = None
    status: int | None = None
    body: Any = None


async def claim(
    session: AsyncSession, *, principal: str, key: str, method: str, path: str, request_hash: str, ttl_seconds: int
) -> Claim:
    now = datetime.now(UTC)
    # An expired key is forgotten, so the same key can start a new request.
    await session.execute(
        delete(IdempotencyRecord).where(
            IdempotencyRecord.principal == principal, IdempotencyRecord.key == key, IdempotencyRecord.expires_at < now
        )
    )
    new_id = (
        await session.execute(
            insert(IdempotencyRecord)
            .values(
                principal=principal,
                key=key,
                method=method,
                path=path,
                request_hash=request_hash,
                expires_at=now + timedelta(seconds=ttl_seconds),
            )
            .on_conflict_do_nothing(index_elements=["principal", "key"])
            .returning(IdempotencyRecord.id)
        )
    ).scalar_one_or_none()
    if new_id is not None:
        return Claim(ClaimState.NEW, record_id=new_id)
    row = (
        await session.execute(
            select(IdempotencyRecord).where(IdempotencyRecord.principal == principal, IdempotencyRecord.key == key)
        )
    ).scalar_one()
    if row.request_hash != request_hash or row.method != method or row.path != path:
        return Claim(ClaimState.MISMATCH, record_id=row.id)
    if row.response_status is None:
        return Claim(ClaimState.IN_PROGRESS, record_id=row.id)
    return Claim(ClaimState.REPLAY, record_id=row.id, status=row.response_status, body=row.response_body)


async def complete(session: AsyncSession, record_id: int, status: int, body: Any) -> None:
    await session.execute(
        update(IdempotencyRecord)
        .where(IdempotencyRecord.id == record_id)
        .values(response_status=status, response_body=body)
    )


async def release(session: AsyncSession, record_id: int) -> None:
    """Forget a claim whose request failed, so the client may retry it with the same key."""
    await session.execute(delete(IdempotencyRecord).where(IdempotencyRecord.id == record_id))
