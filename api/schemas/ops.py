"""What GET /v1/ops/stuck answers."""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel


class StuckFlow(BaseModel):
    workflow_id: str
    type: str | None
    flow: str | None
    stage: str
    since: datetime
    resting_seconds: int
    sla_seconds: int
    order_no: str | None
    merchant_id: str | None
    amount_minor: int | None
