"""What the API key routes answer (never a key itself, except once when it is issued)."""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, Field

from domain.access import Role


class CreatedApiKey(BaseModel):
    key_id: int
    id: int = Field(description="the same as key_id (kept for older clients)")
    role: Role
    person: str
    name: str
    merchant_id: str | None
    key: str = Field(description="Shown once; only its hash is stored.")


class ApiKeyView(BaseModel):
    key_id: int
    role: str
    person: str
    name: str
    merchant_id: str | None
    key_prefix: str
    created_at: datetime
    revoked_at: datetime | None


class RevokedKey(BaseModel):
    key_id: int
    person: str
    role: str
    revoked_at: datetime | None
