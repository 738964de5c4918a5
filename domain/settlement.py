"""Settlement cycles and statements: statuses and the contracts of the settlement flows (pure)."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum

from pydantic import BaseModel, Field


class StatementStatus(StrEnum):
    PENDING_APPROVAL = "PENDING_APPROVAL"
    APPROVED = "APPROVED"
    REJECTED = "REJECTED"


class CycleStatus(StrEnum):
    RUNNING = "RUNNING"
    CLOSED = "CLOSED"
    FAILED = "FAILED"


AUTO = "auto"


def cycle_id_for(cutoff: datetime) -> str:
    return f"C{cutoff:%Y%m%dT%H%M%S}"


class SettlementTerms(BaseModel):
    auto_approve_max_minor: int
    remind_seconds: int
    page_size: int = 5000


class CycleInput(BaseModel):
    """cutoff None: the cycle settles what was settleable when it started (a scheduled run)."""

    cutoff: datetime | None = None
    triggered_by: str = "schedule"
    terms: SettlementTerms


class CycleOpen(BaseModel):
    cycle_id: str
    cutoff: datetime
    triggered_by: str


class CycleState(BaseModel):
    cycle_id: str
    status: CycleStatus
    orders: int = 0
    statements: int = 0


class BuildResult(BaseModel):
    orders: int
    statements: int


class StatementRef(BaseModel):
    statement_id: int
    merchant_id: str
    currency: str
    net_minor: int


class CycleResult(BaseModel):
    cycle_id: str
    status: CycleStatus
    orders: int
    statements: int
    auto_approved: int
    approved: int = 0
    rejected: int = 0


class StatementInput(BaseModel):
    statement: StatementRef
    cycle_id: str
    remind_seconds: int


class Decision(BaseModel):
    statement_id: int
    by: str
    by_key_id: int | None = None
    note: str = ""


class Adjustment(BaseModel):
    amount_minor: int = Field(ge=-(10**12), le=10**12, description="positive: more to the merchant, less commission")
    reason: str = Field(min_length=1, max_length=500)


class AdjustmentRecord(BaseModel):
    statement_id: int
    amount_minor: int
    reason: str
    by: str
    by_key_id: int


class StatementOutcome(BaseModel):
    statement_id: int
    status: StatementStatus
    by: str
