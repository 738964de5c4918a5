"""Ledger posting as an activity: one posting, one database transaction, idempotent by key."""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from temporalio import activity

from activities.refusals import refuse
from db import ledger
from db.engine import unit_of_work
from domain.ledger import Posting


class LedgerActivities:
    def __init__(self, session_factory: async_sessionmaker[AsyncSession]) -> None:
        self._sessions = session_factory

    @activity.defn(name="ledger.post")
    async def post(self, posting: Posting) -> int:
        """Returns the entry id; a repeat of the same key returns the first entry's id."""
        try:
            async with unit_of_work(self._sessions) as session:
                return (await ledger.post(session, posting)).entry_id
        except ledger.LedgerError as exc:
            # A rule the ledger enforces: retrying the same posting cannot succeed.
            raise refuse(exc.type, str(exc)) from exc
