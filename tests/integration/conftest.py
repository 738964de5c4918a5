from __future__ import annotations

import pytest
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from db.engine import unit_of_work
from db.ledger import trial_balance


@pytest.fixture(autouse=True)
async def ledger_invariants(sessions: async_sessionmaker[AsyncSession]):  # type: ignore[no-untyped-def]
    """After every integration test: every entry balances, totals agree per currency, each balance is
    the sum of its lines, and no account that may not go negative is negative."""
    yield
    async with unit_of_work(sessions) as session:
        report = await trial_balance(session)
    assert report["balanced"], report["problems"]
