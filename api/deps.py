"""Request dependencies: settings, database sessions, the Temporal client, and who is calling."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Coroutine
from typing import Annotated, Any

from fastapi import Depends, Request
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from temporalio.client import Client

from api.errors import ApiError
from db.api_keys import Principal, resolve_key
from db.engine import autocommit, unit_of_work
from domain.access import Role
from domain.refusals import Refusal
from domain.settings import Settings


def get_settings(request: Request) -> Settings:
    settings: Settings = request.app.state.settings
    return settings


def get_session_factory(request: Request) -> async_sessionmaker[AsyncSession]:
    factory: async_sessionmaker[AsyncSession] = request.app.state.session_factory
    return factory


async def get_session(request: Request) -> AsyncIterator[AsyncSession]:
    """One transaction per request that needs one; it commits when the handler returns normally."""
    async with unit_of_work(get_session_factory(request)) as session:
        yield session


async def get_temporal(request: Request) -> Client:
    client: Client = await request.app.state.temporal.get()
    return client


SettingsDep = Annotated[Settings, Depends(get_settings)]
SessionDep = Annotated[AsyncSession, Depends(get_session)]
SessionFactoryDep = Annotated[async_sessionmaker[AsyncSession], Depends(get_session_factory)]
TemporalDep = Annotated[Client, Depends(get_temporal)]


async def get_principal(request: Request) -> Principal:
    header = request.headers.get("authorization", "")
    scheme, _, key = header.partition(" ")
    if scheme.lower() != "bearer" or not key.strip():
        raise ApiError(Refusal.UNAUTHENTICATED, "missing API key: send 'Authorization: Bearer <key>'")
    # Looked up on every request (no cache: a revoked key is refused from the very next request on, in
    # every API process); one statement, so no transaction block around it.
    async with autocommit(get_session_factory(request)) as conn:
        principal = await resolve_key(conn, key.strip())
    if principal is None:
        raise ApiError(Refusal.UNAUTHENTICATED, "unknown or revoked API key")
    return principal


def require(*roles: Role) -> Callable[..., Coroutine[Any, Any, Principal]]:
    """Dependency that admits only the given roles (403 for any other authenticated caller)."""

    async def check(principal: Annotated[Principal, Depends(get_principal)]) -> Principal:
        if principal.role not in roles:
            allowed = ", ".join(r.value for r in roles)
            raise ApiError(Refusal.FORBIDDEN, f"role '{principal.role.value}' may not do this (allowed: {allowed})")
        return principal

    return check


def ensure_merchant_scope(principal: Principal, merchant_id: str) -> None:
    """A merchant key sees only its own merchant; other roles pass. Another merchant's resource is a 404,
    as if it did not exist: a 403 would tell a merchant which order numbers or ids are real."""
    if principal.role is Role.MERCHANT and principal.merchant_id != merchant_id:
        raise ApiError(Refusal.NOT_FOUND, "not found among this API key's merchant's resources")
