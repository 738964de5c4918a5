"""Stored responses for Idempotency-Key requests (ARCHITECTURE.md §3).

A claim is made once per (caller, key) and carries the business number minted with it, so every retry
of the key names the same flow. A claim is held under a short lease while a request runs; an unfinished
claim whose lease ran out (the API crashed, or the request failed after its flow start was sent) is
taken over by the next retry, with the same number.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from enum import Enum
from typing import Any

from sqlalchemy import delete, func, null, or_, select, update
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession

from db.models import IdempotencyRecord


class ClaimState(Enum):
    NEW = "new"  # this request holds the claim: run it, then complete(), release() or unlease()
    REPLAY = "replay"  # done before with the same body: answer the stored response
    IN_PROGRESS = "in_progress"  # a concurrent duplicate holds the lease
    MISMATCH = "mismatch"  # the key was used for a different request


@dataclass(frozen=True)
class Claim:
    state: ClaimState
    record_id: int | None = None
    number: str | None = None
    status: int | None = None
    body: Any = None


async def claim(
    session: AsyncSession,
    *,
    principal: str,
    key: str,
    method: str,
    path: str,
    request_hash: str,
    ttl_seconds: int,
    lease_seconds: int,
    number: str,
) -> Claim:
    """Claim `key` for this request; `number` is used only when the claim is new (or had none)."""
    now = datetime.now(UTC)
    lease = now + timedelta(seconds=lease_seconds)
    fresh = insert(IdempotencyRecord).values(
        principal=principal,
        key=key,
        method=method,
        path=path,
        request_hash=request_hash,
        number=number,
        leased_until=lease,
        expires_at=now + timedelta(seconds=ttl_seconds),
    )
    # One statement for a new key: insert the claim, or replace an expired one (an expired key is
    # forgotten, so the same key can start a new request). A live record is left alone (no row back).
    new_id = (
        await session.execute(
            fresh.on_conflict_do_update(
                index_elements=["principal", "key"],
                set_={
                    "method": fresh.excluded.method,
                    "path": fresh.excluded.path,
                    "request_hash": fresh.excluded.request_hash,
                    "number": fresh.excluded.number,
                    "leased_until": fresh.excluded.leased_until,
                    "expires_at": fresh.excluded.expires_at,
                    "response_status": null(),
                    "response_body": null(),
                    "created_at": func.now(),
                },
                where=IdempotencyRecord.expires_at < now,
            ).returning(IdempotencyRecord.id)
        )
    ).scalar_one_or_none()
    if new_id is not None:
        return Claim(ClaimState.NEW, record_id=new_id, number=number)
    row = (
        await session.execute(
            select(IdempotencyRecord).where(IdempotencyRecord.principal == principal, IdempotencyRecord.key == key)
        )
    ).scalar_one()
    if row.request_hash != request_hash or row.method != method or row.path != path:
        return Claim(ClaimState.MISMATCH, record_id=row.id)
    if row.response_status is not None:
        return Claim(ClaimState.REPLAY, record_id=row.id, status=row.response_status, body=row.response_body)
    # Unfinished: take it over only if its lease ran out. The condition is re-checked by the UPDATE
    # itself, so of two retries racing for an expired lease exactly one wins.
    taken = (
        await session.execute(
            update(IdempotencyRecord)
            .where(
                IdempotencyRecord.id == row.id,
                IdempotencyRecord.response_status.is_(None),
                or_(IdempotencyRecord.leased_until.is_(None), IdempotencyRecord.leased_until <= now),
            )
            .values(leased_until=lease, number=func.coalesce(IdempotencyRecord.number, number))
            .returning(IdempotencyRecord.number)
        )
    ).scalar_one_or_none()
    if taken is None:
        return Claim(ClaimState.IN_PROGRESS, record_id=row.id)
    return Claim(ClaimState.NEW, record_id=row.id, number=taken)


# The writes after a claim are one statement each: they take a session or an autocommit connection.
Db = AsyncSession | AsyncConnection


async def complete(session: Db, record_id: int, status: int, body: Any) -> None:
    # The first answer stays: a request that lost its lease but finishes later does not overwrite it.
    await session.execute(
        update(IdempotencyRecord)
        .where(IdempotencyRecord.id == record_id, IdempotencyRecord.response_status.is_(None))
        .values(response_status=status, response_body=body, leased_until=None)
    )


async def release(session: Db, record_id: int) -> None:
    """Forget a claim whose request was refused before anything was started (a fresh retry is safe)."""
    await session.execute(delete(IdempotencyRecord).where(IdempotencyRecord.id == record_id))


async def unlease(session: Db, record_id: int) -> None:
    """Keep an unfinished claim (and its number) but let the next retry take it over at once."""
    await session.execute(
        update(IdempotencyRecord)
        .where(IdempotencyRecord.id == record_id, IdempotencyRecord.response_status.is_(None))
        .values(leased_until=datetime.now(UTC))
    )
