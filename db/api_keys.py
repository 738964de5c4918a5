"""Issuing and resolving API keys. Only a hash of each key is stored; the key is shown once."""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from db.models import ApiKey
from domain.access import Role

KEY_PREFIX = "bo_"


def hash_key(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


@dataclass(frozen=True)
class Principal:
    key_id: int
    name: str
    role: Role
    merchant_id: str | None

    @property
    def actor(self) -> str:
        return f"{self.role.value}:{self.name}#{self.key_id}"


async def issue_key(session: AsyncSession, *, role: Role, name: str, merchant_id: str | None = None) -> tuple[int, str]:
    key = KEY_PREFIX + secrets.token_urlsafe(32)
    row = ApiKey(name=name, role=role.value, merchant_id=merchant_id, key_hash=hash_key(key), key_prefix=key[:11])
    session.add(row)
    await session.flush()
    return row.id, key


async def resolve_key(session: AsyncSession, key: str) -> Principal | None:
    row = (
        await session.execute(select(ApiKey).where(ApiKey.key_hash == hash_key(key), ApiKey.revoked_at.is_(None)))
    ).scalar_one_or_none()
    if row is None:
        return None
    return Principal(key_id=row.id, name=row.name, role=Role(row.role), merchant_id=row.merchant_id)
