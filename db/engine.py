"""Async engine on psycopg 3 and the unit of work (one transaction per block)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from psycopg.rows import namedtuple_row
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, AsyncSession, async_sessionmaker, create_async_engine
from sqlalchemy.orm import Session


def normalize_url(url: str) -> str:
    """Accept plain postgresql:// URLs and pin the psycopg 3 driver."""
    for prefix in ("postgresql+psycopg://", "postgresql+psycopg2://", "postgresql://", "postgres://"):
        if url.startswith(prefix):
            return "postgresql+psycopg://" + url[len(prefix) :]
    raise ValueError(f"not a PostgreSQL URL: {url!r}")


def make_engine(url: str, *, pool_size: int = 10, pre_ping: bool = True) -> AsyncEngine:
    """`pre_ping` spends a round trip on every checkout so that a connection the server has dropped (a restart,
    a failover, an idle timeout) is replaced before any work uses it: an API request then never fails for it."""
    return create_async_engine(normalize_url(url), pool_size=pool_size, max_overflow=pool_size, pool_pre_ping=pre_ping)


def make_worker_engine(url: str, *, pool_size: int = 10) -> AsyncEngine:
    """The worker's engine: no ping on checkout. Every activity is retried by Temporal (policies.DB for the
    database's), and a statement that meets a dropped connection fails as a disconnect, on which SQLAlchemy
    discards every connection pooled before it; so a restart costs one failed attempt per activity running at
    that moment, retried on a fresh connection, where the ping would cost a round trip on every unit of work
    (one of the four a ledger posting took with it)."""
    return make_engine(url, pool_size=pool_size, pre_ping=False)


def make_session_factory(engine: AsyncEngine) -> async_sessionmaker[AsyncSession]:
    return async_sessionmaker(engine, expire_on_commit=False)


@asynccontextmanager
async def unit_of_work(factory: async_sessionmaker[AsyncSession]) -> AsyncIterator[AsyncSession]:
    """One database transaction: commits when the block ends, rolls back if it raises.

    The transaction begins with the block's first statement (the session's autobegin, one step less than an
    explicit begin). After the commit the connection is already back in the pool and closing the session
    only forgets its objects, so that close is awaited directly; after a failure the close rolls back on the
    connection, and there the session's own exit runs it, in a task of its own that a cancelled activity
    cannot interrupt halfway."""
    session = factory()
    try:
        yield session
        await session.commit()
    except BaseException:
        async with session:
            raise
    await session.close()


@asynccontextmanager
async def autocommit(factory: async_sessionmaker[AsyncSession]) -> AsyncIterator[AsyncConnection]:
    """A connection outside any transaction block: each statement commits on its own. For work that is one
    statement (an API key lookup, storing an answer), it saves the BEGIN and COMMIT round trips and the
    session's bookkeeping that a unit of work costs."""
    engine: AsyncEngine = factory.kw["bind"]
    async with engine.connect() as conn:
        yield await conn.execution_options(isolation_level="AUTOCOMMIT")


def _driver_connection(session: Session) -> Any:
    return session.connection().connection.driver_connection


async def fetch_prepared(session: AsyncSession, sql: str, params: dict[str, object]) -> Any:
    """One statement on the session's own connection and transaction, straight through the driver (prepared
    once per connection); its first row, or None. For the statements every order runs several times: the
    ORM's compiling, caching and result handling cost more CPU than the statement itself."""
    pg: Any = await session.run_sync(_driver_connection)  # one step into the session's sync side, not two
    async with pg.cursor(row_factory=namedtuple_row) as cur:
        await cur.execute(sql, params, prepare=True)
        return await cur.fetchone()


async def ping(factory: async_sessionmaker[AsyncSession]) -> None:
    """Raises unless the database answers a trivial query (the health check)."""
    async with factory() as session:
        await session.execute(text("SELECT 1"))
