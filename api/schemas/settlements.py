"""What the settlement routes answer: cycles and statements."""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, Field


class CycleStarted(BaseModel):
    cycle_id: str
    cutoff: datetime
    workflow_id: str


class CycleView(BaseModel):
    cycle_id: str
    cutoff: datetime
    status: str
    orders: int
    statements: int
    failure: str | None
    triggered_by: str
    closed_at: datetime | None


class StatementView(BaseModel):
    id: int
    cycle_id: str
    merchant_id: str
    currency: str
    status: str = Field(description="PENDING_APPROVAL, APPROVED, REJECTED or FAILED")
    order_count: int
    gross_minor: int
    refunded_minor: int
    commission_minor: int = Field(description="after adjustments")
    promoter_minor: int
    net_minor: int = Field(description="after adjustments")
    adjustment_minor: int
    adjustment_reason: str | None
    adjusted_by: str | None
    approved_by: str | None
    rejected_reason: str | None
    failure: str | None
    created_at: datetime
    decided_at: datetime | None


class StatementLine(BaseModel):
    order_no: str
    gross_minor: int
    refunded_minor: int
    subsidy_minor: int = Field(description="the platform's promotion subsidy included in gross")
    commission_minor: int
    promoter_id: str | None
    promoter_minor: int
    net_minor: int
    rule_id: str


class StatementDetail(StatementView):
    lines: list[StatementLine]
