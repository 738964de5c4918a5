"""Reconciliation: finance starts a day's run for a source; finance and operators read runs and the
differences found."""

from __future__ import annotations

from datetime import date, datetime
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request
from pydantic import BaseModel
from sqlalchemy import select

from activities.recon import store_file
from api.deps import SessionDep, SessionFactoryDep, SettingsDep, TemporalDep, require
from api.errors import ApiError
from api.flows import start_and_ask
from api.params import BIGINT_MAX, DbId
from db.api_keys import Principal
from db.engine import unit_of_work
from db.models.recon import ReconDiscrepancy, ReconFile, ReconRun
from domain.access import Role
from domain.recon.lines import Source
from domain.recon.runs import (
    DiscrepancyStatus,
    DiscrepancyType,
    ReconInput,
    ReconStarted,
    RunStatus,
    recon_workflow_id,
)
from domain.refusals import Refusal
from workflows.reconciliation import ReconciliationWorkflow

router = APIRouter(tags=["reconciliation"])
Finance = Annotated[Principal, Depends(require(Role.FINANCE))]
Reader = Annotated[Principal, Depends(require(Role.FINANCE, Role.OPERATOR))]


class RunView(BaseModel):
    run_id: int
    source: Source
    bill_date: date
    status: RunStatus
    file_sha256: str | None
    lines: int
    counts: dict[str, int]
    statement_totals: dict[str, int]
    platform_totals: dict[str, int]
    failure: str | None
    created_at: datetime
    finished_at: datetime | None


class DiscrepancyView(BaseModel):
    id: int
    run_id: int
    source: Source
    bill_date: date
    type: DiscrepancyType
    kind: str
    our_no: str
    statement_minor: int | None
    platform_minor: int | None
    detail: str
    status: DiscrepancyStatus
    resolved_by_run_id: int | None


def run_view(run: ReconRun) -> RunView:
    return RunView(
        run_id=run.id,
        source=Source(run.source),
        bill_date=run.bill_date,
        status=RunStatus(run.status),
        file_sha256=run.file_sha256,
        lines=run.lines,
        counts=run.counts,
        statement_totals=run.statement_totals,
        platform_totals=run.platform_totals,
        failure=run.failure,
        created_at=run.created_at,
        finished_at=run.finished_at,
    )


class FileKept(BaseModel):
    sha256: str
    size_bytes: int


@router.post(
    "/v1/recon/files",
    status_code=201,
    response_model=FileKept,
    summary="Upload a statement file as the party sent it (the raw body); start a run with its sha256",
)
async def upload_file(
    request: Request, source: Source, bill_date: date, factory: SessionFactoryDep, settings: SettingsDep, _: Finance
) -> Any:
    content = await request.body()
    if not content:
        raise ApiError(Refusal.EMPTY_FILE, "the statement file is empty")
    if len(content) > settings.recon_upload_max_bytes:
        raise ApiError(
            Refusal.FILE_TOO_LARGE, f"statement files are limited to {settings.recon_upload_max_bytes} bytes"
        )
    async with unit_of_work(factory) as session:
        sha = await store_file(session, source, bill_date, content)
    return FileKept(sha256=sha, size_bytes=len(content))


@router.post(
    "/v1/recon/runs",
    status_code=202,
    response_model=ReconStarted,
    summary="Reconcile one source's statement of one business day (a running day's run is joined, not repeated)",
)
async def start_run(body: ReconInput, temporal: TemporalDep, session: SessionDep, _: Finance) -> Any:
    if body.file_sha256 is not None:
        kept = await session.get(ReconFile, body.file_sha256)
        if kept is None or (kept.source, kept.bill_date) != (body.source.value, body.bill_date):
            raise ApiError(Refusal.FILE_NOT_FOUND, f"no {body.source.value} file of {body.bill_date} with that sha256")
    return await start_and_ask(
        temporal,
        ReconciliationWorkflow.run,
        body,
        recon_workflow_id(body.source, body.bill_date),
        "started",
        ReconStarted,
        "the reconciliation run",
        repeatable=True,  # a day may be reconciled again; the run changes nothing already found
    )


@router.get("/v1/recon/runs", response_model=list[RunView], summary="Runs, newest first")
async def list_runs(
    session: SessionDep,
    _: Reader,
    source: Source | None = None,
    bill_date: date | None = None,
    limit: int = Query(default=100, ge=1, le=1000),
) -> Any:
    q = select(ReconRun).order_by(ReconRun.id.desc()).limit(limit)
    if source is not None:
        q = q.where(ReconRun.source == source.value)
    if bill_date is not None:
        q = q.where(ReconRun.bill_date == bill_date)
    return [run_view(r) for r in (await session.execute(q)).scalars().all()]


@router.get("/v1/recon/runs/{run_id}", response_model=RunView, summary="A run: status, counts by type, totals")
async def get_run(run_id: DbId, session: SessionDep, _: Reader) -> Any:
    run = await session.get(ReconRun, run_id)
    if run is None:
        raise ApiError(Refusal.RUN_NOT_FOUND, f"reconciliation run {run_id} does not exist")
    return run_view(run)


@router.get(
    "/v1/recon/discrepancies",
    response_model=list[DiscrepancyView],
    summary="Differences found, oldest first (run_id: those a run first found)",
)
async def list_discrepancies(
    session: SessionDep,
    _: Reader,
    run_id: int | None = Query(default=None, ge=1, le=BIGINT_MAX),
    type: DiscrepancyType | None = None,
    status: DiscrepancyStatus | None = None,
    source: Source | None = None,
    our_no: str | None = Query(default=None, max_length=64),
    limit: int = Query(default=500, ge=1, le=5000),
) -> Any:
    q = select(ReconDiscrepancy).order_by(ReconDiscrepancy.id).limit(limit)
    for column, value in (
        (ReconDiscrepancy.run_id, run_id),
        (ReconDiscrepancy.type, type),
        (ReconDiscrepancy.status, status),
        (ReconDiscrepancy.source, source),
        (ReconDiscrepancy.our_no, our_no),
    ):
        if value is not None:
            q = q.where(column == value)
    rows = (await session.execute(q)).scalars().all()
    return [DiscrepancyView.model_validate(r, from_attributes=True) for r in rows]
