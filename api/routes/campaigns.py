"""Campaigns (finance, operator) and the coupons issued under them (service)."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends
from sqlalchemy.ext.asyncio import AsyncSession

from api.deps import SessionDep, SessionFactoryDep, require
from api.errors import ApiError
from api.idempotency import IdempotencyDep
from api.params import CampaignId
from api.schemas.promotions import CampaignView, CouponIssued, IssueCouponRequest
from db.api_keys import Principal
from db.audit import record
from db.engine import unit_of_work
from db.models import Campaign, Coupon
from db.promotions import campaign_view
from domain import numbers
from domain.access import Role
from domain.promotions import CampaignTerms, CouponStatus
from domain.refusals import Refusal

router = APIRouter(prefix="/v1/campaigns", tags=["promotions"])
Manager = Annotated[Principal, Depends(require(Role.FINANCE, Role.OPERATOR))]


async def _campaign(session: AsyncSession, campaign_id: str) -> Campaign:
    row = await session.get(Campaign, campaign_id)
    if row is None:
        raise ApiError(Refusal.CAMPAIGN_NOT_FOUND, f"campaign {campaign_id} does not exist")
    return row


@router.post("", status_code=201, response_model=CampaignView, summary="Create a campaign with its budget")
async def create_campaign(body: CampaignTerms, who: Manager, idem: IdempotencyDep, factory: SessionFactoryDep) -> Any:
    async def create() -> dict[str, Any]:
        # From the key's claim: a retry of the key finds the campaign its first try stored.
        campaign_id = numbers.campaign_id(idem.number)
        async with unit_of_work(factory) as session:
            row = await session.get(Campaign, campaign_id)
            if row is None:
                terms = body.model_dump(mode="json")
                row = Campaign(
                    id=campaign_id,
                    name=body.name,
                    kind=body.kind.value,
                    funded_by=body.funded_by.value,
                    budget_minor=body.budget_minor,
                    spent_minor=0,
                    valid_from=body.valid_from,
                    valid_to=body.valid_to,
                    terms=terms,
                    created_by=who.actor,
                )
                session.add(row)
                await session.flush()
                await session.refresh(row)
                await record(session, who, "campaign.created", "campaign", campaign_id, **terms)
            return campaign_view(row)

    return await idem.run(201, create)


@router.get("/{campaign_id}", response_model=CampaignView, summary="A campaign's terms, budget and spending")
async def get_campaign(
    campaign_id: CampaignId,
    session: SessionDep,
    _: Annotated[Principal, Depends(require(Role.FINANCE, Role.OPERATOR, Role.SERVICE))],
) -> Any:
    return campaign_view(await _campaign(session, campaign_id))


@router.post("/{campaign_id}/coupons", status_code=201, response_model=CouponIssued, summary="Issue a coupon")
async def issue_coupon(
    campaign_id: CampaignId,
    body: IssueCouponRequest,
    _: Annotated[Principal, Depends(require(Role.SERVICE))],
    idem: IdempotencyDep,
    factory: SessionFactoryDep,
) -> Any:
    async def issue() -> CouponIssued:
        coupon_id = numbers.coupon_id(idem.number)
        async with unit_of_work(factory) as session:
            await _campaign(session, campaign_id)
            row = await session.get(Coupon, coupon_id)
            if row is None:
                row = Coupon(
                    id=coupon_id,
                    campaign_id=campaign_id,
                    customer_id=body.customer_id,
                    status=CouponStatus.ISSUED.value,
                    discount_minor=0,
                    subsidy_minor=0,
                )
                session.add(row)
            return CouponIssued(
                coupon_id=row.id,
                campaign_id=row.campaign_id,
                customer_id=row.customer_id,
                status=CouponStatus(row.status),
            )

    return await idem.run(201, issue)
