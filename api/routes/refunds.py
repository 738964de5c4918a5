"""Refunds: after-sale requests, reading them, and finance's approval of manual transfers."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends
from pydantic import BaseModel, Field
from sqlalchemy.ext.asyncio import AsyncSession
from temporalio.client import WorkflowHandle

from api.deps import SessionDep, SessionFactoryDep, SettingsDep, TemporalDep, require
from api.errors import ApiError
from api.idempotency import IdempotencyDep
from api.params import OrderNo, RefundNo
from api.schemas.refunds import RefundView
from db import refunds as repo
from db.api_keys import Principal
from db.engine import unit_of_work
from domain import numbers
from domain.access import Role
from domain.maker_checker import Who, check_refund_approver
from domain.promotions import item_refund_minor
from domain.refunds import (
    ManualApproval,
    RefundInput,
    RefundOpened,
    RefundOrigin,
    RefundRequest,
    RefundResult,
    RefundStatus,
)
from domain.refusals import Refusal
from workflows.client.asking import call_flow, start_and_ask
from workflows.client.terms import refund_terms
from workflows.ids import refund_workflow_id
from workflows.refund import RefundWorkflow

router = APIRouter(tags=["refunds"])


class ApprovalNote(BaseModel):
    note: str = Field(default="", max_length=500)


@router.post(
    "/v1/orders/{order_no}/refunds",
    status_code=202,
    response_model=RefundOpened,
    summary="Request an after-sale refund (partial or full) of a delivered or completed order",
)
async def request_refund(
    order_no: OrderNo,
    body: RefundRequest,
    idem: IdempotencyDep,
    factory: SessionFactoryDep,
    settings: SettingsDep,
    temporal: TemporalDep,
    who: Annotated[Principal, Depends(require(Role.SERVICE, Role.FINANCE))],
) -> Any:
    async def open_refund() -> RefundOpened:
        async with unit_of_work(factory) as session:
            found = await repo.payment_of(session, order_no)
            if found is None:
                raise ApiError(Refusal.ORDER_NOT_FOUND, f"order {order_no} does not exist")
            amount, subsidy = (body.amount_minor, None) if body.amount_minor else await _item(session, order_no, body)
        payment_no, _ = found
        inp = RefundInput(
            refund_no=numbers.refund_no(idem.number),  # a retry of the key names the same refund
            order_no=order_no,
            payment_no=payment_no,
            amount_minor=amount,
            subsidy_minor=subsidy,
            reason=body.reason,
            origin=RefundOrigin.FINANCE if who.role is Role.FINANCE else RefundOrigin.API,
            requested_by=who.who,
            requested_by_key_id=who.key_id,
            terms=refund_terms(settings),
        )
        idem.sending()
        return await start_and_ask(
            temporal,
            RefundWorkflow.run,
            inp,
            refund_workflow_id(inp.refund_no),
            RefundWorkflow.opened,
            f"refunding order {order_no}",
        )

    return await idem.run(202, open_refund)


async def _item(session: AsyncSession, order_no: str, body: RefundRequest) -> tuple[int, int]:
    """Units of one item: what the customer paid for them (after the item's share of the discounts) and
    the matching share of the item's platform subsidy, which the refund takes back out of escrow."""
    item = await repo.order_item(session, order_no, body.sku_id or "")
    if item is None:
        raise ApiError(Refusal.INVALID_REQUEST, f"order {order_no} has no item {body.sku_id}")
    units = body.quantity or item.quantity
    if units > item.quantity:
        raise ApiError(Refusal.REFUND_EXCEEDS_REFUNDABLE, f"the order has {item.quantity} of {body.sku_id}")
    paid = item_refund_minor(item.line_total_minor, item.discount_minor, item.quantity, units)
    return paid, item.subsidy_minor * units // item.quantity


@router.get(
    "/v1/refunds/{refund_no}",
    response_model=RefundView,
    summary="A refund with every attempt and the reason of each failure",
)
async def get_refund(
    refund_no: RefundNo,
    session: SessionDep,
    _: Annotated[Principal, Depends(require(Role.SERVICE, Role.FINANCE, Role.OPERATOR))],
) -> dict[str, Any]:
    view = await repo.refund_view(session, refund_no)
    if view is None:
        raise ApiError(Refusal.REFUND_NOT_FOUND, f"refund {refund_no} does not exist")
    return view


@router.post(
    "/v1/refunds/{refund_no}/manual-transfer/approve",
    response_model=RefundResult,
    summary="Finance approves the manual bank transfer of a refund the channel could not make",
)
async def approve_manual_transfer(
    refund_no: RefundNo,
    body: ApprovalNote,
    factory: SessionFactoryDep,
    temporal: TemporalDep,
    who: Annotated[Principal, Depends(require(Role.FINANCE))],
) -> RefundResult:
    async with unit_of_work(factory) as session:
        view = await repo.refund_view(session, refund_no)
    if view is None:
        raise ApiError(Refusal.REFUND_NOT_FOUND, f"refund {refund_no} does not exist")
    if view["status"] == RefundStatus.SUCCEEDED:  # its flow has ended: say why rather than "not running"
        raise ApiError(
            Refusal.ALREADY_REFUNDED,
            f"refund {refund_no} was made by the channel after all: its manual transfer is cancelled "
            "and must not be paid",
        )
    # Maker-checker on people: the requester (a finance person for finance-initiated refunds) is fixed
    # when the refund opens, so checking it here cannot race; the flow still refuses the same key.
    check_refund_approver(Who(view["requested_by"]), Who(who.who))
    # The flow's activity writes the approval's transfer and its audit row in one transaction.
    approval = ManualApproval(approver=who.who, approver_key_id=who.key_id, note=body.note)
    handle: WorkflowHandle[RefundWorkflow, RefundResult] = temporal.get_workflow_handle_for(
        RefundWorkflow.run, refund_workflow_id(refund_no)
    )
    return await call_flow(
        handle.execute_update(RefundWorkflow.approve_manual, approval),
        f"approving the manual transfer of refund {refund_no}",
    )
