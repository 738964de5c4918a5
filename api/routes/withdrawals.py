"""Withdrawals: merchants ask, finance approves, rejects, and resolves payouts the bank left unanswered."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends
from pydantic import BaseModel, Field
from temporalio.client import Client, WorkflowHandle

from api.deps import SessionDep, SessionFactoryDep, SettingsDep, TemporalDep, ensure_merchant_scope, require
from api.errors import ApiError
from api.idempotency import IdempotencyDep
from api.params import MerchantFilter, MerchantId, WithdrawalId
from api.schemas.withdrawals import WithdrawalView
from db import withdrawals as repo
from db.api_keys import Principal
from db.engine import unit_of_work
from db.models import Merchant
from domain import numbers
from domain.access import Role
from domain.maker_checker import Who, check_payout_resolver
from domain.refusals import Refusal
from domain.withdrawal_eligibility import check_amount
from domain.withdrawals import (
    Decision,
    Resolution,
    WithdrawalInput,
    WithdrawalOpened,
    WithdrawalRequest,
    WithdrawalResult,
    WithdrawalStatus,
)
from workflows.client.asking import call_flow, ensure_payout_batcher, start_and_ask
from workflows.client.terms import payout_terms, withdrawal_terms
from workflows.ids import withdrawal_workflow_id
from workflows.withdrawal import WithdrawalWorkflow

router = APIRouter(tags=["withdrawals"])
Finance = Annotated[Principal, Depends(require(Role.FINANCE))]


class Note(BaseModel):
    note: str = Field(default="", max_length=500)


class Reason(BaseModel):
    reason: str = Field(min_length=1, max_length=500)


class ResolveRequest(BaseModel):
    outcome: Literal["PAID", "FAILED"] = Field(description="what the bank confirmed")
    reason: str = Field(min_length=1, max_length=500, description="how the bank confirmed it, or why it failed")
    bank_ref: str | None = Field(default=None, max_length=100)


@router.post(
    "/v1/merchants/{merchant_id}/withdrawals",
    status_code=202,
    response_model=WithdrawalOpened,
    summary="Withdraw from the available balance to the merchant's verified bank account (frozen at once)",
)
async def request_withdrawal(
    merchant_id: MerchantId,
    body: WithdrawalRequest,
    idem: IdempotencyDep,
    factory: SessionFactoryDep,
    settings: SettingsDep,
    temporal: TemporalDep,
    who: Annotated[Principal, Depends(require(Role.MERCHANT))],
) -> Any:
    ensure_merchant_scope(who, merchant_id)
    check_amount(body.amount_minor, settings.withdrawal_min_minor, settings.withdrawal_max_minor)

    async def open_withdrawal() -> WithdrawalOpened:
        async with unit_of_work(factory) as session:
            if await session.get(Merchant, merchant_id) is None:
                raise ApiError(Refusal.MERCHANT_NOT_FOUND, f"merchant {merchant_id} does not exist")
        await ensure_payout_batcher(temporal, payout_terms(settings))
        inp = WithdrawalInput(
            withdrawal_id=numbers.withdrawal_id(idem.number),  # a retry of the key names the same withdrawal
            merchant_id=merchant_id,
            amount_minor=body.amount_minor,
            requested_by=who.who,
            requested_by_key_id=who.key_id,
            terms=withdrawal_terms(settings),
        )
        idem.sending()
        return await start_and_ask(
            temporal,
            WithdrawalWorkflow.run,
            inp,
            withdrawal_workflow_id(inp.withdrawal_id),
            WithdrawalWorkflow.opened,
            f"withdrawing for merchant {merchant_id}",
        )

    return await idem.run(202, open_withdrawal)


@router.get(
    "/v1/withdrawals",
    response_model=list[WithdrawalView],
    summary="Withdrawals, newest first (finance filters status=UNKNOWN to resolve, conflict=true for bank "
    "results that contradict a resolution)",
)
async def list_withdrawals(
    session: SessionDep,
    who: Annotated[Principal, Depends(require(Role.FINANCE, Role.OPERATOR, Role.MERCHANT))],
    merchant_id: MerchantFilter = None,
    status: WithdrawalStatus | None = None,
    conflict: bool = False,
) -> list[dict[str, Any]]:
    if who.role is Role.MERCHANT:
        merchant_id = who.merchant_id
    return await repo.withdrawals(session, merchant_id=merchant_id, status=status, conflict=conflict)


@router.get(
    "/v1/withdrawals/{withdrawal_id}",
    response_model=WithdrawalView,
    summary="A withdrawal with its payout batch and bank reference",
)
async def get_withdrawal(
    withdrawal_id: WithdrawalId,
    session: SessionDep,
    who: Annotated[Principal, Depends(require(Role.FINANCE, Role.OPERATOR, Role.MERCHANT))],
) -> dict[str, Any]:
    view = await repo.withdrawal_view(session, withdrawal_id)
    if view is None or (who.role is Role.MERCHANT and view["merchant_id"] != who.merchant_id):
        raise ApiError(Refusal.WITHDRAWAL_NOT_FOUND, f"withdrawal {withdrawal_id} does not exist")
    return view


def _flow(temporal: Client, withdrawal_id: str) -> WorkflowHandle[WithdrawalWorkflow, WithdrawalResult]:
    """The withdrawal's flow: finance's decisions are its Updates; its activity writes each decision and
    its audit row together."""
    return temporal.get_workflow_handle_for(WithdrawalWorkflow.run, withdrawal_workflow_id(withdrawal_id))


async def _decide(factory: Any, temporal: Client, withdrawal_id: str, decision: Decision) -> WithdrawalResult:
    async with unit_of_work(factory) as session:
        if await repo.withdrawal_view(session, withdrawal_id) is None:
            raise ApiError(Refusal.WITHDRAWAL_NOT_FOUND, f"withdrawal {withdrawal_id} does not exist")
    return await call_flow(
        _flow(temporal, withdrawal_id).execute_update(WithdrawalWorkflow.decide, decision),
        f"{'approval' if decision.kind == 'approve' else 'rejection'} of withdrawal {withdrawal_id}",
    )


@router.post("/v1/withdrawals/{withdrawal_id}/approve", response_model=WithdrawalResult, summary="Finance approves")
async def approve(
    withdrawal_id: WithdrawalId,
    body: Note,
    factory: SessionFactoryDep,
    settings: SettingsDep,
    temporal: TemporalDep,
    who: Finance,
) -> WithdrawalResult:
    await ensure_payout_batcher(temporal, payout_terms(settings))
    decision = Decision(kind="approve", by=who.who, by_key_id=who.key_id, note=body.note)
    return await _decide(factory, temporal, withdrawal_id, decision)


@router.post(
    "/v1/withdrawals/{withdrawal_id}/reject", response_model=WithdrawalResult, summary="Finance rejects (unfreezes)"
)
async def reject(
    withdrawal_id: WithdrawalId, body: Reason, factory: SessionFactoryDep, temporal: TemporalDep, who: Finance
) -> WithdrawalResult:
    decision = Decision(kind="reject", by=who.who, by_key_id=who.key_id, note=body.reason)
    return await _decide(factory, temporal, withdrawal_id, decision)


@router.post(
    "/v1/withdrawals/{withdrawal_id}/resolve",
    response_model=WithdrawalResult,
    summary="Finance settles an UNKNOWN payout once the bank has confirmed it paid or failed: one person "
    "proposes, a second confirms (never the person who approved the withdrawal)",
)
async def resolve(
    withdrawal_id: WithdrawalId, body: ResolveRequest, factory: SessionFactoryDep, temporal: TemporalDep, who: Finance
) -> WithdrawalResult:
    # The checker of a payout is not its maker: whoever approved the withdrawal cannot also declare
    # what became of it. The approver is recorded before the payout left, so this cannot race.
    async with unit_of_work(factory) as session:
        view = await repo.withdrawal_view(session, withdrawal_id)
    if view is None:
        raise ApiError(Refusal.WITHDRAWAL_NOT_FOUND, f"withdrawal {withdrawal_id} does not exist")
    check_payout_resolver(Who(view["decided_by"]), Who(who.who))
    resolution = Resolution(
        outcome=body.outcome, by=who.who, by_key_id=who.key_id, reason=body.reason, bank_ref=body.bank_ref
    )
    return await call_flow(
        _flow(temporal, withdrawal_id).execute_update(WithdrawalWorkflow.resolve, resolution),
        f"resolution of withdrawal {withdrawal_id}",
    )
