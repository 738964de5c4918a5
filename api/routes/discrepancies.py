"""Reconciliation discrepancies: one with its history, and finance's resolution (adjust and write-off
wait for a second finance person's approval). The discrepancy's own flow decides; these routes ask it."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends

from api.deps import SessionDep, TemporalDep, require
from api.errors import ApiError
from api.params import DbId
from api.schemas.recon import ApproveBody, DiscrepancyDetail, DiscrepancyView, ResolveBody
from db.api_keys import Principal
from db.models.recon import ReconDiscrepancy
from domain.access import Role
from domain.recon.discrepancy import Approval, DiscrepancyResult, FinanceDecision
from domain.refusals import Refusal
from workflows.client.asking import call_flow
from workflows.discrepancy import DiscrepancyWorkflow
from workflows.ids import discrepancy_workflow_id

router = APIRouter(tags=["reconciliation"])
Finance = Annotated[Principal, Depends(require(Role.FINANCE))]
Reader = Annotated[Principal, Depends(require(Role.FINANCE, Role.OPERATOR))]


async def _existing(session: SessionDep, discrepancy_id: int) -> ReconDiscrepancy:
    found = await session.get(ReconDiscrepancy, discrepancy_id)
    if found is None:
        raise ApiError(Refusal.DISCREPANCY_NOT_FOUND, f"discrepancy {discrepancy_id} does not exist")
    return found


@router.get(
    "/v1/recon/discrepancies/{discrepancy_id}",
    response_model=DiscrepancyDetail,
    summary="One discrepancy: what was found, what its flow did, by whom",
)
async def get_discrepancy(discrepancy_id: DbId, session: SessionDep, _: Reader) -> Any:
    d = await _existing(session, discrepancy_id)
    view = DiscrepancyView.model_validate(d, from_attributes=True)
    return DiscrepancyDetail(**view.model_dump(), workflow_id=discrepancy_workflow_id(d.id), history=d.history)


@router.post(
    "/v1/recon/discrepancies/{discrepancy_id}/resolve",
    response_model=DiscrepancyResult,
    summary="Finance resolves a discrepancy waiting for it (adjust and write_off then wait for approval)",
)
async def resolve(
    discrepancy_id: DbId, body: ResolveBody, session: SessionDep, temporal: TemporalDep, who: Finance
) -> Any:
    await _existing(session, discrepancy_id)
    decision = FinanceDecision(action=body.action, reason=body.reason, by=who.who, by_key_id=who.key_id)
    handle = temporal.get_workflow_handle(discrepancy_workflow_id(discrepancy_id))
    return await call_flow(
        handle.execute_update(DiscrepancyWorkflow.resolve, decision),
        f"resolution of discrepancy {discrepancy_id}",
    )


@router.post(
    "/v1/recon/discrepancies/{discrepancy_id}/approve",
    response_model=DiscrepancyResult,
    summary="A second finance person approves an adjust or write-off (not the one who proposed it)",
)
async def approve(
    discrepancy_id: DbId, body: ApproveBody, session: SessionDep, temporal: TemporalDep, who: Finance
) -> Any:
    await _existing(session, discrepancy_id)
    approval = Approval(by=who.who, by_key_id=who.key_id, note=body.note)
    handle = temporal.get_workflow_handle(discrepancy_workflow_id(discrepancy_id))
    return await call_flow(
        handle.execute_update(DiscrepancyWorkflow.approve, approval),
        f"approval of discrepancy {discrepancy_id}",
    )
