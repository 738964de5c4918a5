"""A reconciliation run's input, result and the kinds of difference it records."""

from __future__ import annotations

from datetime import date
from enum import StrEnum

from pydantic import BaseModel, Field

from domain.recon.lines import Source


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
    RESOLVED = "RESOLVED"


class ReconInput(BaseModel):
    source: Source
    bill_date: date
    # A statement finance uploaded (POST /v1/recon/files) instead of downloading it from the party.
    file_sha256: str | None = Field(default=None, pattern="^[0-9a-f]{64}$")


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
