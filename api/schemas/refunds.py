"""What GET /v1/refunds/{refund_no} answers."""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, Field


class RefundAttemptView(BaseModel):
    seq: int
    kind: str
    status: str
    detail: str
    at: datetime


class RefundView(BaseModel):
    refund_no: str
    order_no: str
    payment_no: str
    merchant_id: str
    status: str = Field(description="PROCESSING, SUCCEEDED, MANUAL_PENDING, MANUAL_PAID or FAILED")
    amount_minor: int
    currency: str
    channel: str
    reason: str
    origin: str
    requested_by: str
    failure_reason: str | None
    approved_by: str | None
    created_at: datetime
    attempts: list[RefundAttemptView]
