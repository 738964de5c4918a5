"""Settlement runs and statements: finance starts cycles, reads statements, adjusts, approves, rejects."""

from __future__ import annotations

import csv
import io
from datetime import UTC, datetime, timedelta
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Query
from fastapi.responses import Response
from pydantic import AwareDatetime, BaseModel, Field
from temporalio.client import WorkflowHandle

from api.deps import SessionDep, SessionFactoryDep, SettingsDep, TemporalDep, ensure_merchant_scope, require
from api.errors import ApiError
from api.params import CycleId, DbId, MerchantFilter
from api.schemas.settlements import CycleStarted, CycleView, StatementDetail, StatementView
from db import settlement as repo
from db.api_keys import Principal
from db.engine import unit_of_work
from domain.access import Role
from domain.refusals import Refusal
from domain.settlement import (
    Adjustment,
    AdjustmentRecord,
    CycleInput,
    Decision,
    StatementOutcome,
    check_cutoff,
    cycle_id_for,
)
from workflows.client.asking import call_flow, start_settlement_cycle
from workflows.client.terms import settlement_terms
from workflows.ids import statement_workflow_id
from workflows.statement import StatementWorkflow

router = APIRouter(tags=["settlement"])
Finance = Annotated[Principal, Depends(require(Role.FINANCE))]
Reader = Annotated[Principal, Depends(require(Role.FINANCE, Role.MERCHANT, Role.OPERATOR))]


class RunRequest(BaseModel):
    # Aware only: a naive cutoff cannot be compared with "now" (it was a 500), nor does it name one instant.
    cutoff: AwareDatetime | None = Field(
        default=None, description="settle orders settleable by then, with a UTC offset (default: now)"
    )


class Note(BaseModel):
    note: str = Field(default="", max_length=500)


class Reason(BaseModel):
    reason: str = Field(min_length=1, max_length=500)


@router.post(
    "/v1/settlement-runs",
    status_code=202,
    response_model=CycleStarted,
    summary="Run a settlement cycle now (one cycle per cutoff)",
)
async def run_cycle(body: RunRequest, who: Finance, settings: SettingsDep, temporal: TemporalDep) -> CycleStarted:
    now = datetime.now(UTC)
    if body.cutoff is not None:
        check_cutoff(body.cutoff, now)
    # Cutoffs are whole seconds (they name the cycle); "now" rounds up so it includes this very moment.
    cutoff = (
        body.cutoff.astimezone(UTC).replace(microsecond=0)
        if body.cutoff
        else (now + timedelta(seconds=1)).replace(microsecond=0)
    )
    cycle_id = cycle_id_for(cutoff)
    workflow_id = await start_settlement_cycle(
        temporal, cycle_id, CycleInput(cutoff=cutoff, triggered_by=who.who, terms=settlement_terms(settings))
    )
    return CycleStarted(cycle_id=cycle_id, cutoff=cutoff, workflow_id=workflow_id)


@router.get("/v1/settlement-runs/{cycle_id}", response_model=CycleView, summary="A cycle's status and counts")
async def get_cycle(
    cycle_id: CycleId, session: SessionDep, _: Annotated[Principal, Depends(require(Role.FINANCE, Role.OPERATOR))]
) -> dict[str, Any]:
    found = await repo.cycle(session, cycle_id)
    if found is None:
        raise ApiError(Refusal.CYCLE_NOT_FOUND, f"cycle {cycle_id} has not started")
    return found


@router.get("/v1/settlements", response_model=list[StatementView], summary="Statements, newest first (or oldest first)")
async def list_statements(
    session: SessionDep,
    who: Reader,
    status: Literal["PENDING_APPROVAL", "APPROVED", "REJECTED", "FAILED"] | None = None,
    merchant_id: MerchantFilter = None,
    cycle_id: Annotated[str | None, Query(max_length=40, pattern=r"^[A-Za-z0-9_-]+$")] = None,
    limit: int = Query(default=100, ge=1, le=1000),
    oldest_first: bool = Query(default=False, description="oldest first (a work queue) instead of newest"),
) -> list[dict[str, Any]]:
    if who.role is Role.MERCHANT:
        merchant_id = who.merchant_id
    return await repo.statements(
        session, status=status, merchant_id=merchant_id, cycle_id=cycle_id, limit=limit, oldest_first=oldest_first
    )


@router.get(
    "/v1/settlements/{statement_id}",
    response_model=StatementDetail,
    # The CSV export is the same statement for a spreadsheet: documented beside the JSON.
    responses={200: {"content": {"text/csv": {"schema": {"type": "string"}}}}},
    summary="A statement with its lines (?format=csv for a spreadsheet)",
)
async def get_statement(
    statement_id: DbId, session: SessionDep, who: Reader, format: Literal["json", "csv"] = "json"
) -> Any:
    st = await repo.statement(session, statement_id)
    if st is None:
        raise ApiError(Refusal.STATEMENT_NOT_FOUND, f"statement {statement_id} does not exist")
    ensure_merchant_scope(who, st.merchant_id)
    lines = await repo.lines(session, st)
    if format == "json":
        return {**repo.statement_view(st), "lines": lines}
    out = io.StringIO()
    columns = [
        "order_no",
        "gross_minor",
        "refunded_minor",
        "subsidy_minor",
        "commission_minor",
        "promoter_id",
        "promoter_minor",
        "net_minor",
        "rule_id",
    ]
    writer = csv.DictWriter(out, fieldnames=columns)
    writer.writeheader()
    writer.writerows(lines)
    view = repo.statement_view(st)
    writer.writerow(
        {
            "order_no": "TOTAL",
            "gross_minor": view["gross_minor"],
            "refunded_minor": view["refunded_minor"],
            "commission_minor": view["commission_minor"],
            "promoter_minor": view["promoter_minor"],
            "net_minor": view["net_minor"],
            "rule_id": f"adjustment {view['adjustment_minor']}",
        }
    )
    name = f"statement-{st.id}-{st.merchant_id}-{st.cycle_id}.csv"
    # A BOM so spreadsheet programs read the file as UTF-8.
    return Response(
        "\ufeff" + out.getvalue(),
        media_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": f'attachment; filename="{name}"'},
    )


async def _statement_flow(
    factory: SessionFactoryDep, temporal: TemporalDep, statement_id: int
) -> WorkflowHandle[StatementWorkflow, StatementOutcome]:
    async with unit_of_work(factory) as session:
        if await repo.statement(session, statement_id) is None:
            raise ApiError(Refusal.STATEMENT_NOT_FOUND, f"statement {statement_id} does not exist")
    return temporal.get_workflow_handle_for(StatementWorkflow.run, statement_workflow_id(statement_id))


async def _decide(
    kind: str, statement_id: int, note: str, who: Principal, factory: SessionFactoryDep, temporal: TemporalDep
) -> StatementOutcome:
    handle = await _statement_flow(factory, temporal, statement_id)
    # The flow compares people (maker-checker); its activity writes the decision and its audit row together.
    decision = Decision(statement_id=statement_id, by=who.who, by_key_id=who.key_id, note=note)
    return await call_flow(
        handle.execute_update(StatementWorkflow.decide, args=[kind, decision]), f"{kind} statement {statement_id}"
    )


@router.post("/v1/settlements/{statement_id}/approve", response_model=StatementOutcome)
async def approve(
    statement_id: DbId, body: Note, who: Finance, factory: SessionFactoryDep, temporal: TemporalDep
) -> StatementOutcome:
    return await _decide("approve", statement_id, body.note, who, factory, temporal)


@router.post("/v1/settlements/{statement_id}/reject", response_model=StatementOutcome)
async def reject(
    statement_id: DbId, body: Reason, who: Finance, factory: SessionFactoryDep, temporal: TemporalDep
) -> StatementOutcome:
    return await _decide("reject", statement_id, body.reason, who, factory, temporal)


@router.post(
    "/v1/settlements/{statement_id}/adjustments",
    response_model=StatementView,
    summary="Move money between commission and merchant net",
)
async def adjust(
    statement_id: DbId, body: Adjustment, who: Finance, factory: SessionFactoryDep, temporal: TemporalDep
) -> dict[str, Any]:
    handle = await _statement_flow(factory, temporal, statement_id)
    adjustment = AdjustmentRecord(
        statement_id=statement_id,
        amount_minor=body.amount_minor,
        reason=body.reason,
        by=who.who,
        by_key_id=who.key_id,
    )
    await call_flow(handle.execute_update(StatementWorkflow.adjust, adjustment), f"adjusting statement {statement_id}")
    async with unit_of_work(factory) as session:
        st = await repo.statement(session, statement_id)
        assert st is not None
        return repo.statement_view(st)
