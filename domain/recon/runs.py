"""A reconciliation run's input, result and the kinds of difference it records."""

from __future__ import annotations

from datetime import date
from enum import StrEnum

from pydantic import BaseModel, Field

from domain.recon.lines import Source
from domain.refunds import RefundTerms


class RunStatus(StrEnum):
    RUNNING = "RUNNING"
    MATCHED = "MATCHED"  # loaded and classified; the differences are in recon_discrepancies
    EMPTY = "EMPTY"  # the party has no bill for the day ("No Bill Exist")
    FAILED = "FAILED"  # the statement could not be had or was refused: `failure` says where and why


class DiscrepancyType(StrEnum):
    LONG = "LONG"  # the party has it, the platform does not (长款)
    SHORT = "SHORT"  # the platform has it, the party's statement does not (短款)
    AMOUNT_MISMATCH = "AMOUNT_MISMATCH"
    DUPLICATE_PAYMENT = "DUPLICATE_PAYMENT"
    STATUS_MISMATCH = "STATUS_MISMATCH"
    FEE_MISMATCH = "FEE_MISMATCH"


class DiscrepancyStatus(StrEnum):
    OPEN = "OPEN"
    HELD = "HELD"  # a SHORT waiting for a later statement (day cut) before anyone acts on it
    ACTING = "ACTING"  # its flow is acting through the flow that owns the record (capture, refund …)
    AWAITING_FINANCE = "AWAITING_FINANCE"  # no automatic rule, or a SHORT past its hold
    AWAITING_APPROVAL = "AWAITING_APPROVAL"  # an adjust or write-off waiting for a second finance person
    RESOLVED = "RESOLVED"


class DiscrepancyTerms(BaseModel):
    """What a discrepancy flow is given from settings (flows/terms.py)."""

    short_hold_seconds: int
    remind_seconds: int
    check_seconds: int = 2  # first wait before looking for an automatic action's effect (then doubling)
    act_within_seconds: int = 600  # an automatic action not reflected in the records by then goes to finance
    refund: RefundTerms


class ReconInput(BaseModel):
    source: Source
    bill_date: date
    # A statement finance uploaded (POST /v1/recon/files) instead of downloading it from the party.
    file_sha256: str | None = Field(default=None, pattern="^[0-9a-f]{64}$")
    # Set by the starter from settings (a caller's value is replaced): each new discrepancy's flow gets
    # them. None (runs started before discrepancy flows existed) starts no flows.
    discrepancy_terms: DiscrepancyTerms | None = None


class DailyInput(BaseModel):
    """The `recon-daily` Schedule's fixed input: the day is the flow's previous business day."""

    sources: list[Source] = Field(default_factory=lambda: list(Source))
    discrepancy_terms: DiscrepancyTerms


class DailyResult(BaseModel):
    bill_date: str
    runs: dict[str, str]  # source → the run's status (or why it did not finish)


class RunFlows(BaseModel):
    """The discrepancy flows a run starts (found first by it) and wakes (HELD ones it carried)."""

    new: list[int] = Field(default_factory=list)
    resolved: list[int] = Field(default_factory=list)


class ReconStarted(BaseModel):
    run_id: int
    workflow_id: str


class ReconResult(BaseModel):
    run_id: int
    source: Source
    bill_date: date
    status: RunStatus
    lines: int = 0
    counts: dict[str, int] = Field(default_factory=dict)
    failure: str | None = None
