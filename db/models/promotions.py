"""Campaigns and the coupons issued under them (domain/promotions.py holds the rules)."""

from datetime import datetime
from typing import Any

from sqlalchemy import BigInteger, CheckConstraint, DateTime, ForeignKey, Index, String, func
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import Mapped, mapped_column

from db.base import Base, created_at_column


class Campaign(Base):
    __tablename__ = "campaigns"
    # The budget is guarded by the database too: a reservation is `spent + d <= budget` in one UPDATE.
    __table_args__ = (CheckConstraint("spent_minor >= 0 AND spent_minor <= budget_minor", name="within_budget"),)

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    kind: Mapped[str] = mapped_column(String(20))
    funded_by: Mapped[str] = mapped_column(String(10))
    budget_minor: Mapped[int] = mapped_column(BigInteger)
    spent_minor: Mapped[int] = mapped_column(BigInteger, default=0)
    valid_from: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    valid_to: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    terms: Mapped[dict[str, Any]] = mapped_column(JSONB)  # the CampaignTerms as created, whole
    created_by: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = created_at_column()


class Coupon(Base):
    __tablename__ = "coupons"
    __table_args__ = (Index("ix_coupons_campaign_customer", "campaign_id", "customer_id"),)

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    campaign_id: Mapped[str] = mapped_column(ForeignKey("campaigns.id"))
    customer_id: Mapped[str] = mapped_column(String(64))
    status: Mapped[str] = mapped_column(String(20))  # domain.promotions.CouponStatus
    order_no: Mapped[str | None] = mapped_column(String(40), nullable=True, index=True)
    discount_minor: Mapped[int] = mapped_column(BigInteger, default=0)
    subsidy_minor: Mapped[int] = mapped_column(BigInteger, default=0)
    issued_at: Mapped[datetime] = created_at_column()
    updated_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), server_default=func.now(), onupdate=func.now()
    )
