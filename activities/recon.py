"""Reconciliation activities: open a run, download and keep the statement, load and match it."""

from __future__ import annotations

import hashlib
import tempfile
from collections.abc import Callable, Iterator
from datetime import UTC, date, datetime
from typing import BinaryIO, Protocol

from sqlalchemy import select, text
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from temporalio import activity

from activities.parties.errors import PartyRejected
from activities.parties.statements import StatementClient
from activities.refusals import refuse
from db import recon, recon_files
from db.engine import unit_of_work
from db.models.recon import ReconFile, ReconRun
from domain.recon.alipay import parse_alipay
from domain.recon.bank import parse_bank
from domain.recon.lines import Source, StatementLine, StatementRefused, StatementSummary
from domain.recon.runs import ReconInput, ReconResult, RunStatus
from domain.recon.stream import Row
from domain.recon.wechat import parse_wechat
from domain.refusals import Refusal


class Bill(Protocol):
    summary: StatementSummary | None

    def __iter__(self) -> Iterator[StatementLine]: ...

    def rows(self) -> Iterator[Row]: ...


PARSERS: dict[Source, Callable[[BinaryIO], Bill]] = {
    Source.WECHAT: parse_wechat,
    Source.ALIPAY: parse_alipay,
    Source.BANK: parse_bank,
}


def result_of(run: ReconRun) -> ReconResult:
    return ReconResult(
        run_id=run.id,
        source=Source(run.source),
        bill_date=run.bill_date,
        status=RunStatus(run.status),
        lines=run.lines,
        counts=dict(run.counts),
        failure=run.failure,
    )


def totals_of(summary: StatementSummary | None) -> dict[str, int]:
    if summary is None:
        return {}
    keys = ("count", "payment_minor", "refund_minor", "payout_paid_minor", "payout_failed_minor", "fee")
    return {k: int(getattr(summary, k)) for k in keys}


async def _run(session: AsyncSession, run_id: int) -> ReconRun:
    run = await session.get(ReconRun, run_id, with_for_update=True)
    if run is None:
        raise RuntimeError(f"reconciliation run {run_id} does not exist")
    return run


async def store_file(session: AsyncSession, source: Source, day: date, content: bytes) -> str:
    """Keep a statement's bytes once (by sha256): the same file twice is the same file."""
    sha = hashlib.sha256(content).hexdigest()
    row = {"sha256": sha, "source": source.value, "bill_date": day, "size_bytes": len(content)}
    await session.execute(insert(ReconFile).values(**row, content=content).on_conflict_do_nothing())
    return sha


def _finish(run: ReconRun, status: RunStatus, failure: str | None = None) -> None:
    run.status = status.value
    run.failure = failure
    run.finished_at = datetime.now(UTC)


class ReconActivities:
    def __init__(
        self,
        sessions: async_sessionmaker[AsyncSession],
        client: StatementClient,
        fee_rates_bp: dict[str, int],
        staging_keep_days: int = 7,
    ) -> None:
        self._sessions = sessions
        self._client = client
        self._rates = fee_rates_bp
        self._keep_days = staging_keep_days

    @activity.defn(name="recon.open")
    async def open(self, inp: ReconInput, flow: str) -> int:
        """The run of this flow execution (`flow` is "{workflow id}/{run id}"): a retry finds it again."""
        async with unit_of_work(self._sessions) as session:
            values = {
                "flow": flow,
                "source": inp.source.value,
                "bill_date": inp.bill_date,
                "file_sha256": inp.file_sha256,
            }
            await session.execute(
                insert(ReconRun).values(**values, status=RunStatus.RUNNING.value).on_conflict_do_nothing()
            )
            return int((await session.execute(select(ReconRun.id).where(ReconRun.flow == flow))).scalar_one())

    @activity.defn(name="recon.fetch")
    async def fetch(self, run_id: int) -> ReconResult:
        """Download the day's statement and keep its bytes (once per sha256). "Bill Creating" raises a
        retryable error: the flow's retry policy comes back later. No bill: the run ends EMPTY."""
        async with unit_of_work(self._sessions) as session:
            run = await _run(session, run_id)
            source, day = Source(run.source), run.bill_date
        # Downloaded into a spool on local disk and kept from there: the file never sits in memory whole.
        with tempfile.TemporaryFile() as spool:
            try:
                billed = await self._client.download(source.value, day, spool)
            except PartyRejected as exc:
                why = f"the {source.value} statement of {day} cannot be had: {exc}"
                raise refuse(Refusal.STATEMENT_UNAVAILABLE, why) from exc
            async with unit_of_work(self._sessions) as session:
                run = await _run(session, run_id)
                if run.status != RunStatus.RUNNING.value:
                    return result_of(run)
                if not billed:
                    _finish(run, RunStatus.EMPTY)
                    return result_of(run)
                run.file_sha256 = await recon_files.keep_file(session, source.value, day, spool)
                return result_of(run)

    @activity.defn(name="recon.match")
    async def match(self, run_id: int) -> ReconResult:
        """Parse the kept file strictly, COPY its lines into staging and classify, in one transaction: a
        refused file leaves nothing behind, and a retry after a crash starts from a clean slate."""
        async with unit_of_work(self._sessions) as session:
            run = await _run(session, run_id)
            if run.status != RunStatus.RUNNING.value:
                return result_of(run)
            if run.file_sha256 is None:
                raise RuntimeError(f"run {run_id} has no statement file to match")
            source = Source(run.source)
            await session.execute(text("DELETE FROM recon_statement_lines WHERE run_id = :run"), {"run": run_id})
            # The file goes through a spool on local disk, a chunk at a time: memory holds a chunk and a
            # batch of COPY rows, however large the day's statement.
            with tempfile.TemporaryFile() as spool:
                await recon_files.read_file(session, run.file_sha256, spool)
                spool.seek(0)
                bill = PARSERS[source](spool)
                try:
                    run.lines = await recon.load_rows(session, run_id, bill.rows())
                except StatementRefused as exc:
                    why = f"the {source.value} statement of {run.bill_date} is refused: {exc}"
                    raise refuse(Refusal.STATEMENT_REFUSED, why) from exc
            run.statement_totals = totals_of(bill.summary)
            run.platform_totals = await recon.platform_totals(session, source.value, run.bill_date)
            rate = self._rates.get(source.value, 0)
            run.counts = await recon.classify(session, run_id, source.value, run.bill_date, rate)
            await recon.prune_staging(session, run_id, source.value, run.bill_date, self._keep_days)
            _finish(run, RunStatus.MATCHED)
            return result_of(run)

    @activity.defn(name="recon.fail")
    async def fail(self, run_id: int, reason: str) -> ReconResult:
        async with unit_of_work(self._sessions) as session:
            run = await _run(session, run_id)
            if run.status == RunStatus.RUNNING.value:
                _finish(run, RunStatus.FAILED, reason)
            return result_of(run)
