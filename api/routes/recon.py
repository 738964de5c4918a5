"""Reconciliation: finance starts a day's run for a source; finance and operators read runs and the
differences found."""

from __future__ import annotations

import csv
import io
from datetime import date
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Query, Request, Response
from fastapi.exceptions import RequestValidationError
from pydantic import ValidationError
from starlette.datastructures import UploadFile

from activities.recon import store_file
from api.deps import SessionDep, SessionFactoryDep, SettingsDep, TemporalDep, require
from api.errors import ApiError
from api.params import BIGINT_MAX, DbId
from api.schemas.recon import DiscrepancyView, FileKept, RunView, run_view
from db import discrepancies, recon
from db.api_keys import Principal
from db.engine import unit_of_work
from db.models.recon import ReconFile, ReconRun
from domain.access import Role
from domain.recon.lines import Source
from domain.recon.runs import (
    DiscrepancyStatus,
    DiscrepancyType,
    ReconInput,
    ReconStarted,
)
from domain.refusals import Refusal
from domain.settings import Settings
from workflows.client.asking import start_and_ask
from workflows.client.terms import discrepancy_terms
from workflows.ids import recon_workflow_id
from workflows.reconciliation import ReconciliationWorkflow

router = APIRouter(tags=["reconciliation"])
Finance = Annotated[Principal, Depends(require(Role.FINANCE))]
Reader = Annotated[Principal, Depends(require(Role.FINANCE, Role.OPERATOR))]


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
    _check_size(content, settings)
    async with unit_of_work(factory) as session:
        sha = await store_file(session, source, bill_date, content)
    return FileKept(sha256=sha, size_bytes=len(content))


_DAY = {"type": "string", "format": "date"}
_SOURCE = {"type": "string", "enum": [x.value for x in Source]}
_RUN_BODY = {
    "required": True,
    "content": {
        "application/json": {
            "schema": {
                "type": "object",
                "required": ["source", "bill_date"],
                "properties": {
                    "source": _SOURCE,
                    "bill_date": _DAY,
                    "file_sha256": {"type": "string", "pattern": "^[0-9a-f]{64}$"},
                },
            }
        },
        "multipart/form-data": {
            "schema": {
                "type": "object",
                "required": ["source", "bill_date", "file"],
                "properties": {"source": _SOURCE, "bill_date": _DAY, "file": {"type": "string", "format": "binary"}},
            }
        },
    },
}


async def _uploaded(request: Request, settings: Settings, factory: Any) -> ReconInput:
    """A statement finance uploads with the run (multipart `source`, `bill_date`, `file`), kept once."""
    form = await request.form(max_files=1, max_fields=3)
    file = form.get("file")
    try:
        inp = ReconInput.model_validate({"source": form.get("source"), "bill_date": form.get("bill_date")})
    except ValidationError as exc:
        raise RequestValidationError(exc.errors()) from None
    if not isinstance(file, UploadFile):
        raise ApiError(Refusal.INVALID_REQUEST, "a multipart upload needs its statement as the part `file`")
    content = await file.read(settings.recon_upload_max_bytes + 1)
    _check_size(content, settings)
    async with unit_of_work(factory) as session:
        sha = await store_file(session, inp.source, inp.bill_date, content)
    return inp.model_copy(update={"file_sha256": sha})


def _check_size(content: bytes, settings: Settings) -> None:
    if not content:
        raise ApiError(Refusal.EMPTY_FILE, "the statement file is empty")
    if len(content) > settings.recon_upload_max_bytes:
        raise ApiError(
            Refusal.FILE_TOO_LARGE, f"statement files are limited to {settings.recon_upload_max_bytes} bytes"
        )


@router.post(
    "/v1/recon/runs",
    status_code=202,
    response_model=ReconStarted,
    summary="Reconcile one source's statement of one business day: downloaded (JSON), an uploaded file's "
    "sha256 (JSON), or the file itself (multipart); the same uploaded file twice is the same run",
    openapi_extra={"requestBody": _RUN_BODY},
)
async def start_run(
    request: Request,
    temporal: TemporalDep,
    session: SessionDep,
    factory: SessionFactoryDep,
    settings: SettingsDep,
    _: Finance,
) -> Any:
    if request.headers.get("content-type", "").startswith("multipart/form-data"):
        body = await _uploaded(request, settings, factory)
        if (same := await recon.run_of_file(session, body.source.value, body.bill_date, body.file_sha256)) is not None:
            return ReconStarted(run_id=same.id, workflow_id=recon_workflow_id(body.source, body.bill_date))
    else:
        try:
            body = ReconInput.model_validate_json(await request.body())
        except ValidationError as exc:
            raise RequestValidationError(exc.errors()) from None
    if body.file_sha256 is not None:
        kept = await session.get(ReconFile, body.file_sha256)
        if kept is None or (kept.source, kept.bill_date) != (body.source.value, body.bill_date):
            raise ApiError(Refusal.FILE_NOT_FOUND, f"no {body.source.value} file of {body.bill_date} with that sha256")
    # Terms come from settings, never from the caller.
    body = body.model_copy(update={"discrepancy_terms": discrepancy_terms(settings)})
    return await start_and_ask(
        temporal,
        ReconciliationWorkflow.run,
        body,
        recon_workflow_id(body.source, body.bill_date),
        ReconciliationWorkflow.started,
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
    return [run_view(r) for r in await recon.runs(session, source, bill_date, limit)]


@router.get("/v1/recon/runs/{run_id}", response_model=RunView, summary="A run: status, counts by type, totals")
async def get_run(run_id: DbId, session: SessionDep, _: Reader) -> Any:
    run = await session.get(ReconRun, run_id)
    if run is None:
        raise ApiError(Refusal.RUN_NOT_FOUND, f"reconciliation run {run_id} does not exist")
    return run_view(run)


@router.get(
    "/v1/recon/discrepancies",
    response_model=list[DiscrepancyView],
    summary="Differences found, oldest first (run_id: those a run first found); format=csv for a spreadsheet",
    responses={200: {"content": {"text/csv": {"schema": {"type": "string"}}}}},
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
    format: Literal["json", "csv"] = "json",
) -> Any:
    rows = await recon.discrepancies(
        session, run_id=run_id, type=type, status=status, source=source, our_no=our_no, limit=limit
    )
    if format == "csv":
        out = io.StringIO()
        csv.writer(out).writerows(discrepancies.csv_rows(rows))
        name = f"discrepancies-run-{run_id}.csv" if run_id else "discrepancies.csv"
        headers = {"Content-Disposition": f'attachment; filename="{name}"'}
        return Response(out.getvalue(), media_type="text/csv; charset=utf-8", headers=headers)
    return [DiscrepancyView.model_validate(r, from_attributes=True) for r in rows]
