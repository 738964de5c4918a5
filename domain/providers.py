"""Service providers: who may register whom, and what a registration holds.

A merchant registers its own staff; the platform (the `service` role) registers its crowd-sourced pool,
which belongs to no merchant. Dispatch offers an order to the merchant's own staff first, then to the
pool (db/order_writes.py `dispatch` is that rule in SQL, since it must run under the row locks)."""

from __future__ import annotations

from pydantic import BaseModel, Field, field_validator

from domain.access import Role
from domain.ids import CodeId
from domain.refusals import Refusal, Refused

MAX_CATEGORIES = 20
# What the demo and test orders sell (tests/support/shop.py, ops bench and chaos sell "home").
DEMO_CATEGORIES = ("home", "wellness", "beauty", "food")


class ProviderRegistration(BaseModel):
    name: str = Field(min_length=1, max_length=200)
    categories: list[CodeId] = Field(min_length=1, max_length=MAX_CATEGORIES)
    merchant_id: CodeId | None = None
    phone: str | None = Field(default=None, min_length=5, max_length=30, pattern=r"^\+?[0-9 \-]+$")
    id_no: str | None = Field(default=None, min_length=15, max_length=18, pattern=r"^[0-9]{14,17}[0-9X]$")

    @field_validator("categories")
    @classmethod
    def _distinct(cls, value: list[str]) -> list[str]:
        if len(set(value)) != len(value):
            raise ValueError("each category once")
        return value


class Availability(BaseModel):
    online: bool


class ProviderView(BaseModel):
    provider_id: str
    name: str
    merchant_id: str | None
    categories: list[str]
    online: bool
    busy: bool = Field(description="serving an order (offered, accepted or in service)")
    phone: str | None = Field(description="masked: only the last four digits")
    id_no: str | None = Field(description="masked: only the last four characters")


def owner(role: Role, key_merchant_id: str | None, asked_merchant_id: str | None) -> str | None:
    """The merchant a new provider belongs to (None: the platform's pool), or why the caller may not."""
    if role is Role.MERCHANT:
        if asked_merchant_id is not None and asked_merchant_id != key_merchant_id:
            raise Refused(Refusal.FORBIDDEN, "a merchant registers only its own staff")
        return key_merchant_id
    if asked_merchant_id is not None:
        raise Refused(
            Refusal.INVALID_REQUEST,
            "the platform's pool belongs to no merchant: a merchant registers its own staff with its own key",
        )
    return None


def may_manage(role: Role, key_merchant_id: str | None, provider_merchant_id: str | None) -> bool:
    """A merchant manages its own staff; the service role manages the pool."""
    if role is Role.MERCHANT:
        return provider_merchant_id is not None and provider_merchant_id == key_merchant_id
    return role is Role.SERVICE and provider_merchant_id is None
