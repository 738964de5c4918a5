"""Discrepancy activities: load a discrepancy's facts, record what its flow did, park a difference in
suspense and clear it on finance's word, and what a reconciliation run books and starts."""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from temporalio import activity

from activities.refusals import refuse
from db import discrepancies as repo
from db import ledger
from db.engine import unit_of_work
from domain import ledger as rules
from domain.recon.discrepancy import DiscrepancyFacts, DiscrepancyOutcome, FinanceAction, cleared, parked
from domain.recon.runs import DiscrepancyStatus, RunFlows
from domain.refusals import Refusal


async def _facts(session: AsyncSession, discrepancy_id: int) -> DiscrepancyFacts:
    found = await repo.facts(session, discrepancy_id)
    if found is None:
        raise refuse(Refusal.DISCREPANCY_NOT_FOUND, f"discrepancy {discrepancy_id} does not exist")
    return found


async def _post(session: AsyncSession, posting: rules.Posting | None) -> int | None:
    if posting is None:
        return None
    try:
        return (await ledger.post(session, posting)).entry_id
    except ledger.LedgerError as exc:
        raise refuse(exc.type, str(exc)) from exc


class DiscrepancyActivities:
    def __init__(self, sessions: async_sessionmaker[AsyncSession]) -> None:
        self._sessions = sessions

    @activity.defn(name="recon.discrepancy_facts")
    async def facts(self, discrepancy_id: int) -> DiscrepancyFacts:
        async with unit_of_work(self._sessions) as session:
            return await _facts(session, discrepancy_id)

    @activity.defn(name="recon.discrepancy_record")
    async def record(self, outcome: DiscrepancyOutcome) -> None:
        async with unit_of_work(self._sessions) as session:
            o = outcome
            await repo.record(session, o.discrepancy_id, o.status, o.action, o.note, o.by, None)

    @activity.defn(name="recon.discrepancy_to_finance")
    async def to_finance(self, discrepancy_id: int, note: str) -> DiscrepancyFacts:
        """Hand the discrepancy to finance; a money difference waits in suspense meanwhile (RECON_SUSPENSE),
        so the channel's clearing shows what its statement says."""
        async with unit_of_work(self._sessions) as session:
            f = await _facts(session, discrepancy_id)
            entry = await _post(session, parked(f))
            status = DiscrepancyStatus.AWAITING_FINANCE.value
            await repo.record(session, discrepancy_id, status, "FINANCE", note, None, entry)
            return f

    @activity.defn(name="recon.discrepancy_clear")
    async def clear(self, discrepancy_id: int, action: FinanceAction, note: str, by: str) -> None:
        """Finance's approved adjust or write-off: the parked difference leaves suspense (RECON_ADJUST)."""
        async with unit_of_work(self._sessions) as session:
            f = await _facts(session, discrepancy_id)
            entry = await _post(session, cleared(f, action))
            await repo.record(session, discrepancy_id, DiscrepancyStatus.RESOLVED.value, action.value, note, by, entry)

    @activity.defn(name="recon.run_flows")
    async def run_flows(self, run_id: int) -> RunFlows:
        async with unit_of_work(self._sessions) as session:
            new, resolved = await repo.of_run(session, run_id)
            return RunFlows(new=new, resolved=resolved)

    @activity.defn(name="recon.book_fees")
    async def book_fees(self, run_id: int) -> list[int]:
        """The day's channel fees from the statement (CHANNEL_FEE), once per source, day and currency: a
        re-run of the day finds the entry it posted."""
        async with unit_of_work(self._sessions) as session:
            source, day = await repo.day_run(session, run_id)
            if source == "bank":
                return []
            entries = []
            for currency, minor in sorted((await repo.day_fees(session, run_id)).items()):
                key = f"channel-fee:{source}:{day}:{currency}"
                ref = f"recon-{source}-{day}"
                if minor <= 0:
                    continue
                try:
                    async with session.begin_nested():
                        posted = await ledger.post(session, rules.channel_fee(key, ref, currency, minor, source))
                    entries.append(posted.entry_id)
                except ledger.KeyReused:
                    # Another file of the same day (finance's upload) with other fees: the first booking
                    # stands, and the difference shows as the statement's own FEE_MISMATCH rows.
                    activity.logger.warning("fees of %s %s already booked from another statement", source, day)
            return entries
