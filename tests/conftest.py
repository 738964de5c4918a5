"""Session fixtures: real servers, started once per test run and only when a test asks for them."""

from __future__ import annotations

import secrets
from collections.abc import AsyncIterator, Iterator

import httpx
import pytest
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from temporalio.client import Client

from db.api_keys import issue_key
from db.demo import seed_providers
from db.engine import make_engine, make_session_factory, unit_of_work
from db.migrate import upgrade
from domain.access import Role
from domain.settings import Settings
from tests.support.shop import Shop
from tests.support.stack import Services, start_postgres, start_services, start_temporal
from workflows.client.connection import connect


@pytest.fixture(scope="session")
def database_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    url, pg = start_postgres(tmp_path_factory.mktemp("postgres"))
    try:
        upgrade(url)
        yield url
    finally:
        if pg:
            pg.stop()


@pytest.fixture(scope="session")
def temporal_address(database_url: str) -> Iterator[str]:
    address, temporal = start_temporal()
    if temporal is None:  # an external cluster: make sure our search attributes exist there
        import asyncio

        from ops.search_attributes import ensure_registered

        async def register() -> None:
            await ensure_registered(await connect(Settings(), address))

        asyncio.run(register())
    try:
        yield address
    finally:
        if temporal:
            temporal.stop()


@pytest.fixture(scope="session")
def services(database_url: str, temporal_address: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Services]:
    yield from start_services(database_url, temporal_address, tmp_path_factory.mktemp("stack"))


@pytest.fixture(scope="session")
async def sessions(database_url: str) -> AsyncIterator[async_sessionmaker[AsyncSession]]:
    engine = make_engine(database_url, pool_size=25)
    yield make_session_factory(engine)
    await engine.dispose()


@pytest.fixture(scope="session")
async def keys(sessions: async_sessionmaker[AsyncSession]) -> dict[Role, str]:
    """One API key per role (the merchant key's merchant is `m-test`), each held by its own person."""
    out: dict[Role, str] = {}
    async with unit_of_work(sessions) as session:
        for role in Role:
            _, out[role] = await issue_key(
                session,
                role=role,
                name=f"test-{role.value}",
                merchant_id="m-test" if role is Role.MERCHANT else None,
                person=f"test-{role.value}",
            )
    return out


@pytest.fixture
async def api(services: Services) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=services.api_url, timeout=30) as client:
        yield client


@pytest.fixture
async def shop(
    api: httpx.AsyncClient, keys: dict[Role, str], sessions: async_sessionmaker[AsyncSession], services: Services
) -> AsyncIterator[Shop]:
    s = Shop(api, keys, sessions, services)
    async with unit_of_work(sessions) as session:
        # Fresh providers per test: a provider holds one order at a time, and an earlier test may have
        # left its orders in service.
        await seed_providers(session, 5, prefix=f"prov-{secrets.token_hex(4)}")
    try:
        yield s
    finally:
        await s.reset_faults()
        await s.outside.aclose()


@pytest.fixture(scope="session")
async def temporal(temporal_address: str) -> Client:
    return await connect(Settings(), temporal_address)
