"""Settlement cycles and statements: statuses and the contracts of the settlement flows (pure)."""

from __future__ import annotations

from datetime import datetime, timedelta
from enum import StrEnum

from pydantic import BaseModel, Field

from domain import ledger as rules
from domain.refusals import Refusal, Refused


class StatementStatus(StrEnum):
    PENDING_APPROVAL = "PENDING_APPROVAL"
    APPROVED = "APPROVED"
    REJECTED = "REJECTED"
    FAILED = "FAILED"  # its posting could not be built (reason kept); finance rejects it, the others go on


# Statements a cycle waits on: finance still has to decide them.
UNDECIDED = (StatementStatus.PENDING_APPROVAL, StatementStatus.FAILED)


class CycleStatus(StrEnum):
    RUNNING = "RUNNING"
    CLOSED = "CLOSED"
    FAILED = "FAILED"


AUTO = "auto"


def cycle_id_for(cutoff: datetime) -> str:
    return f"C{cutoff:%Y%m%dT%H%M%S}"


def check_cutoff(cutoff: datetime, now: datetime) -> None:
    """A cycle settles orders up to its cutoff; a cutoff in the future would take orders whose after-sale
    window is still open (one second of clock skew is forgiven)."""
    if cutoff > now + timedelta(seconds=1):
        raise Refused(Refusal.CUTOFF_IN_FUTURE, "a cycle cannot settle orders that are not settleable yet")


class SettlementTerms(BaseModel):
    auto_approve_max_minor: int
    remind_seconds: int
    page_size: int = 5000
    children_page: int = 200  # statement children a cycle run starts before it continues as new


class CycleResume(BaseModel):
    """Where a cycle continued as new: statement children up to `after_id` are started already."""

    after_id: int
    orders: int
    statements: int
    auto_approved: int
    released: int


class CycleInput(BaseModel):
    """cutoff None: the cycle settles what was settleable when it started (a scheduled run)."""

    cutoff: datetime | None = None
    triggered_by: str = "schedule"
    terms: SettlementTerms
    resume: CycleResume | None = None


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
    failure: str | None = None  # set when its posting could not be built: finance can only reject it


class Decided(BaseModel):
    """How a cycle's statements ended, once none waits for finance any more."""

    approved: int
    rejected: int


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
    failure: str | None = None


class StatementPostingError(ValueError):
    """One statement's SETTLEMENT entry cannot be built (an odd promoter id, an unknown currency...)."""


def statement_posting(
    statement_id: int,
    currency: str,
    *,
    merchant_id: str,
    net_minor: int,
    commission_minor: int,
    adjustment_minor: int,
    promoters: dict[str, int],
) -> rules.Posting:
    """The SETTLEMENT entry of one statement, or StatementPostingError saying why it cannot exist.

    The error fails that statement alone (visibly, for finance to reject); it must never stop a cycle."""
    try:
        return rules.settlement(
            f"settlement:{statement_id}",
            f"statement-{statement_id}",
            currency,
            merchant_id=merchant_id,
            merchant_net=net_minor + adjustment_minor,
            commission=commission_minor - adjustment_minor,
            promoters=promoters,
        )
    except ValueError as exc:
        raise StatementPostingError(_first_line(exc)) from exc


def _first_line(exc: ValueError) -> str:
    # pydantic wraps the rule's message in its own report: finance needs the rule's sentence only.
    lines = [ln.strip() for ln in str(exc).splitlines() if ln.strip()]
    useful = [ln for ln in lines if "account code" in ln or "currency" in ln or "unbalanced" in ln]
    text = (useful or lines or [type(exc).__name__])[0]
    return text.split(" [type=")[0].removeprefix("Value error, ")[:500]
