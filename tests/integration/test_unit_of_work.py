"""The unit of work against a real PostgreSQL: commit, rollback, cancellation, and the worker's engine after
the server drops its connections."""

from __future__ import annotations

import asyncio
import uuid

import pytest
from sqlalchemy import select, text
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from db.engine import make_session_factory, make_worker_engine, unit_of_work
from db.ledger import open_accounts
from db.models import LedgerAccount
from domain.accounts import channel_clearing


def code() -> str:
    return channel_clearing(f"uow{uuid.uuid4().hex[:10]}")


async def opened(sessions: async_sessionmaker[AsyncSession], account: str) -> bool:
    async with unit_of_work(sessions) as session:
        found = await session.execute(select(LedgerAccount.id).where(LedgerAccount.code == account))
        return found.first() is not None


async def test_a_block_that_ends_commits_and_one_that_raises_leaves_nothing(sessions):
    kept, dropped = code(), code()
    async with unit_of_work(sessions) as session:
        await open_accounts(session, [kept], "CNY")
    with pytest.raises(LookupError):
        async with unit_of_work(sessions) as session:
            await open_accounts(session, [dropped], "CNY")
            raise LookupError("the block fails after its write")
    assert await opened(sessions, kept)
    assert not await opened(sessions, dropped)


async def test_a_cancelled_block_rolls_back_and_gives_its_connection_back(database_url):
    engine = make_worker_engine(database_url, pool_size=1)
    sessions = make_session_factory(engine)
    account = code()
    wrote = asyncio.Event()

    async def stalls() -> None:
        async with unit_of_work(sessions) as session:
            await open_accounts(session, [account], "CNY")
            wrote.set()
            await asyncio.sleep(60)

    try:
        task = asyncio.create_task(stalls())
        await asyncio.wait_for(wrote.wait(), timeout=30)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        assert engine.pool.checkedout() == 0  # type: ignore[attr-defined]
        assert not await opened(sessions, account)
    finally:
        await engine.dispose()


async def test_the_workers_engine_fails_once_on_a_dropped_connection_then_works(database_url, sessions):
    """No ping on checkout (db/engine.py, make_worker_engine): the first unit of work on a connection the server
    dropped fails (Temporal retries that activity), and the pool has thrown away its other stale connections."""
    engine = make_worker_engine(database_url, pool_size=2)
    worker = make_session_factory(engine)
    try:
        pids = []
        async with unit_of_work(worker) as one, unit_of_work(worker) as two:  # two connections in the pool
            for session in (one, two):
                pids.append((await session.execute(text("SELECT pg_backend_pid()"))).scalar_one())
        async with unit_of_work(sessions) as session:
            for pid in pids:
                await session.execute(text("SELECT pg_terminate_backend(:pid)"), {"pid": pid})
        with pytest.raises(DBAPIError) as failed:
            async with unit_of_work(worker) as session:
                await session.execute(text("SELECT 1"))
        assert failed.value.connection_invalidated
        for _ in range(2):  # the other stale connection was discarded with the pool: no second failure
            async with unit_of_work(worker) as session:
                assert (await session.execute(text("SELECT 1"))).scalar_one() == 1
    finally:
        await engine.dispose()
