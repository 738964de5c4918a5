"""Issuing, listing, revoking and resolving API keys. Only a hash of each key is stored; the key is shown once.

Every key belongs to a person: maker-checker compares people, so one person's two keys can never be
maker and checker. Keys are resolved against the database on every request (no cache), so a revoked
key is refused from the very next request on.
"""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession

from db.models import ApiKey
from domain.access import Role, actor_label, normalize_person

KEY_PREFIX = "bo_"


def hash_key(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


@dataclass(frozen=True)
class Principal:
    key_id: int
    name: str
    role: Role
    merchant_id: str | None
    person: str | None = None  # None only for principals rebuilt from records older than people

    @property
    def who(self) -> str:
        """The person to hand to a flow as maker or checker (the key name for records without one)."""
        return self.person or self.name

    @property
    def actor(self) -> str:
        return actor_label(self.role.value, self.who, self.key_id)


async def issue_key(
    session: AsyncSession, *, role: Role, name: str, merchant_id: str | None = None, person: str | None = None
) -> tuple[int, str]:
    """`person` defaults to the key's name (as the migration backfilled older keys)."""
    key = KEY_PREFIX + secrets.token_urlsafe(32)
    row = ApiKey(
        name=name,
        person=normalize_person(person if person is not None else name),
        role=role.value,
        merchant_id=merchant_id,
        key_hash=hash_key(key),
        key_prefix=key[:11],
    )
    session.add(row)
    await session.flush()
    return row.id, key


def key_view(row: ApiKey) -> dict[str, Any]:
    return {
        "key_id": row.id,
        "role": row.role,
        "person": row.person,
        "name": row.name,
        "merchant_id": row.merchant_id,
        "key_prefix": row.key_prefix,
        "created_at": row.created_at,
        "revoked_at": row.revoked_at,
    }


async def list_keys(session: AsyncSession, *, include_revoked: bool = False) -> list[dict[str, Any]]:
    query = select(ApiKey).order_by(ApiKey.id)
    if not include_revoked:
        query = query.where(ApiKey.revoked_at.is_(None))
    return [key_view(row) for row in (await session.execute(query)).scalars()]


async def revoke_key(session: AsyncSession, key_id: int) -> tuple[ApiKey | None, bool]:
    """(the key or None, whether this call revoked it); revoking a revoked key changes nothing."""
    revoked = (
        await session.execute(
            update(ApiKey)
            .where(ApiKey.id == key_id, ApiKey.revoked_at.is_(None))
            .values(revoked_at=datetime.now(UTC))
            .returning(ApiKey.id)
        )
    ).scalar_one_or_none()
    row = await session.get(ApiKey, key_id, populate_existing=True)
    return row, revoked is not None


# Only the columns a Principal needs, as plain rows: every request runs this, and loading ORM objects
# costs more than the lookup itself.
_RESOLVE = select(ApiKey.id, ApiKey.name, ApiKey.role, ApiKey.merchant_id, ApiKey.person)


async def resolve_key(db: AsyncSession | AsyncConnection, key: str) -> Principal | None:
    row = (
        await db.execute(_RESOLVE.where(ApiKey.key_hash == hash_key(key), ApiKey.revoked_at.is_(None)))
    ).one_or_none()
    if row is None:
        return None
    return Principal(key_id=row.id, name=row.name, role=Role(row.role), merchant_id=row.merchant_id, person=row.person)
