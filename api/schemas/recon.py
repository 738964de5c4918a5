"""What the reconciliation routes answer."""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

from pydantic import BaseModel, Field

from db.models.recon import ReconRun
from domain.recon.discrepancy import FinanceAction
from domain.recon.lines import Source
from domain.recon.runs import DiscrepancyStatus, DiscrepancyType, RunStatus


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
    action: str | None = None
    note: str = ""
    decided_by: str | None = None


class DiscrepancyDetail(DiscrepancyView):
    """One discrepancy with every step its flow took ({at, status, action, note, by})."""

    workflow_id: str
    history: list[dict[str, Any]]


class ResolveBody(BaseModel):
    action: FinanceAction
    reason: str = Field(min_length=1, max_length=500)


class ApproveBody(BaseModel):
    note: str = Field(default="", max_length=500)


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
