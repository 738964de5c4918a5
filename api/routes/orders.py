"""Orders: placement (update-with-start), reading, and the decisions the order flow takes from outside."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Any

from fastapi import APIRouter, Depends
from sqlalchemy.ext.asyncio import AsyncSession
from temporalio.client import Client, WorkflowHandle

from api.deps import SessionDep, SessionFactoryDep, SettingsDep, TemporalDep, ensure_merchant_scope, require
from api.errors import ApiError
from api.idempotency import IdempotencyDep
from api.params import OrderNo
from api.schemas.orders import OrderView
from db import orders as repo
from db.api_keys import Principal
from db.engine import autocommit
from db.promotions import applied_coupons
from db.settlement import active_rules
from domain import numbers
from domain.access import Role
from domain.admission import admit_order, quantities
from domain.commission import OrderFacts, price
from domain.orders import (
    CancelRequest,
    CommissionSnapshot,
    CreateOrderRequest,
    FulfilmentRequest,
    OrderCreated,
    OrderInput,
    OrderResult,
    TransitionResult,
)
from domain.refusals import Refusal
from domain.settings import Settings
from workflows.client.asking import call_flow, start_and_ask
from workflows.client.terms import order_terms
from workflows.ids import order_workflow_id
from workflows.order import OrderWorkflow

router = APIRouter(prefix="/v1/orders", tags=["orders"])
Service = Annotated[Principal, Depends(require(Role.SERVICE))]


@router.post("", status_code=201, response_model=OrderCreated, summary="Place an order; answers with the payment")
async def create_order(
    body: CreateOrderRequest,
    _: Service,
    idem: IdempotencyDep,
    settings: SettingsDep,
    temporal: TemporalDep,
) -> Any:
    if "discount_minor" in body.model_fields_set:
        raise ApiError(
            Refusal.DISCOUNT_NOT_ACCEPTED,
            "discount_minor is computed by the server from coupon_ids; send coupon_ids instead",
        )

    async def check(session: AsyncSession) -> tuple[CommissionSnapshot, CreateOrderRequest]:
        # In the key's claim transaction: a refusal here forgets the claim with it.
        return await _admissible(session, body, settings), await _discounted(session, body)

    async def place(checked: tuple[CommissionSnapshot, CreateOrderRequest]) -> OrderCreated:
        commission, request = checked
        # From the key's claim: a retry of the same key names the same order and payment.
        suffix = idem.number
        inp = OrderInput(
            order_no=numbers.order_no(suffix),
            payment_no=numbers.payment_no(suffix),
            request=request,
            commission=commission,
            terms=order_terms(settings),
        )
        idem.sending()
        return await start_and_ask(
            temporal, OrderWorkflow.run, inp, order_workflow_id(inp.order_no), OrderWorkflow.placed, "placing the order"
        )

    return await idem.run_checked(201, check, place)


async def price_commission(
    session: AsyncSession, body: CreateOrderRequest, settings: Settings, merchant_category: str
) -> CommissionSnapshot:
    """The commission rule that applies (domain.commission.price), from the rules valid now."""
    facts = OrderFacts(
        merchant_id=body.merchant_id,
        sku_ids=[i.sku_id for i in body.items],
        category_ids=[merchant_category, *(i.category_id for i in body.items)],
        campaign_id=body.campaign_id,
    )
    return price(
        await active_rules(session),
        facts,
        datetime.now(UTC),
        default_bps=settings.default_commission_bps,
        promoter_bps=settings.promoter_commission_bps,
        has_promoter=body.promoter_id is not None,
    )


async def _admissible(session: AsyncSession, body: CreateOrderRequest, settings: Settings) -> CommissionSnapshot:
    """Refuse what the flow would refuse, before any flow starts; answer the commission rule that applies."""
    wanted = quantities((i.sku_id, i.quantity) for i in body.items)
    facts = await repo.admission_facts(session, body.merchant_id, list(wanted))
    admit_order(
        body.merchant_id, facts.merchant, body.currency, body.channel, settings.channel_weights, wanted, facts.tracked
    )
    assert facts.category is not None  # admitted: it exists
    return await price_commission(session, body, settings, facts.category)


def _flow(temporal: Client, order_no: str) -> WorkflowHandle[OrderWorkflow, OrderResult]:
    """The order's flow; its decisions are its Updates (workflows/order.py), answered once taken."""
    return temporal.get_workflow_handle_for(OrderWorkflow.run, order_workflow_id(order_no))


async def _discounted(session: AsyncSession, body: CreateOrderRequest) -> CreateOrderRequest:
    """The request with the discount its coupons give now, so the placement answer's payable is right;
    orders.create checks it again under lock and reserves the budget (it may still refuse)."""
    if not body.coupon_ids:
        return body
    applied = await applied_coupons(session, body)
    discount = sum(a.discount_minor for a in applied)
    if body.goods_minor + body.delivery_fee_minor - discount <= 0:
        raise ApiError(Refusal.AMOUNT_OUT_OF_RANGE, "nothing to pay after the coupons: the payable must be positive")
    return body.model_copy(update={"discount_minor": discount})


async def _check(factory: SessionFactoryDep, order_no: str, who: Principal) -> None:
    """The order exists and is the caller's to touch; checked in its own short statement (no transaction
    block) so that no connection is held while the flow decides."""
    async with autocommit(factory) as conn:
        _in_scope(order_no, await repo.merchant_of_order(conn, order_no), who)


def _in_scope(order_no: str, merchant_id: str | None, who: Principal) -> str:
    if merchant_id is None:
        raise ApiError(Refusal.ORDER_NOT_FOUND, f"order {order_no} does not exist")
    ensure_merchant_scope(who, merchant_id)
    return merchant_id


@router.get("/{order_no}", response_model=OrderView, summary="Status, amounts, provider, payments and timeline")
async def get_order(
    order_no: OrderNo,
    session: SessionDep,
    who: Annotated[Principal, Depends(require(Role.SERVICE, Role.MERCHANT, Role.OPERATOR))],
) -> dict[str, Any]:
    # Read first, scope checked on what was read: one query for the order row instead of two.
    view = await repo.order_view(session, order_no)
    _in_scope(order_no, None if view is None else view["merchant_id"], who)
    assert view is not None
    return view


@router.post("/{order_no}/cancel", response_model=TransitionResult, summary="Cancel an order awaiting payment")
async def cancel_order(
    order_no: OrderNo, body: CancelRequest, who: Service, factory: SessionFactoryDep, temporal: TemporalDep
) -> TransitionResult:
    await _check(factory, order_no, who)
    return await call_flow(
        _flow(temporal, order_no).execute_update(OrderWorkflow.cancel, body), f"cancelling order {order_no}"
    )


@router.post("/{order_no}/accept", response_model=TransitionResult, summary="The merchant accepts a paid order")
async def accept_order(
    order_no: OrderNo,
    factory: SessionFactoryDep,
    temporal: TemporalDep,
    who: Annotated[Principal, Depends(require(Role.MERCHANT))],
) -> TransitionResult:
    await _check(factory, order_no, who)
    return await call_flow(
        _flow(temporal, order_no).execute_update(OrderWorkflow.accept), f"accepting order {order_no}"
    )


@router.post(
    "/{order_no}/fulfilment-events",
    response_model=TransitionResult,
    summary="A service provider accepted, declined, arrived or delivered",
)
async def fulfilment_event(
    order_no: OrderNo, body: FulfilmentRequest, who: Service, factory: SessionFactoryDep, temporal: TemporalDep
) -> TransitionResult:
    await _check(factory, order_no, who)
    return await call_flow(
        _flow(temporal, order_no).execute_update(OrderWorkflow.fulfilment, body), f"{body.event.value} on {order_no}"
    )


@router.post("/{order_no}/confirm", response_model=TransitionResult, summary="The customer confirms receipt")
async def confirm_order(
    order_no: OrderNo, who: Service, factory: SessionFactoryDep, temporal: TemporalDep
) -> TransitionResult:
    await _check(factory, order_no, who)
    return await call_flow(
        _flow(temporal, order_no).execute_update(OrderWorkflow.confirm), f"confirming order {order_no}"
    )
