"""Campaign and coupon answers."""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel

from domain.ids import CodeId
from domain.promotions import CampaignTerms, CouponStatus


class CampaignView(CampaignTerms):
    id: str
    spent_minor: int  # reserved by unpaid orders plus consumed by paid ones
    remaining_minor: int
    created_by: str
    created_at: datetime


class IssueCouponRequest(BaseModel):
    customer_id: CodeId


class CouponIssued(BaseModel):
    coupon_id: str
    campaign_id: str
    customer_id: str
    status: CouponStatus
