"""Withdrawals and payout batches: statuses and the contracts of their flows (pure)."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Literal

from pydantic import BaseModel, Field

from domain.access import same_person
from domain.refusals import Refusal, Refused


class WithdrawalStatus(StrEnum):
    PENDING_APPROVAL = "PENDING_APPROVAL"
    QUEUED = "QUEUED"
    SUBMITTED = "SUBMITTED"
    PAID = "PAID"
    FAILED = "FAILED"
    REJECTED = "REJECTED"
    UNKNOWN = "UNKNOWN"


# Money of these withdrawals has left (or may have left) available: counted against the daily limit.
COUNTING = (
    WithdrawalStatus.PENDING_APPROVAL,
    WithdrawalStatus.QUEUED,
    WithdrawalStatus.SUBMITTED,
    WithdrawalStatus.PAID,
    WithdrawalStatus.UNKNOWN,
)
FINAL = (WithdrawalStatus.PAID, WithdrawalStatus.FAILED, WithdrawalStatus.REJECTED)
# Handed to the bank and not yet answered for good: the payout batcher follows these, across restarts.
AT_THE_BANK = (WithdrawalStatus.SUBMITTED, WithdrawalStatus.UNKNOWN)


class WithdrawalRequest(BaseModel):
    amount_minor: int = Field(gt=0, le=10**12)


class WithdrawalTerms(BaseModel):
    daily_limit_minor: int
    approval_min_minor: int
    approval_remind_seconds: int
    payout_bank: str  # the platform's bank account payouts leave from (ledger bank:{name}:payout_clearing)


class WithdrawalInput(BaseModel):
    withdrawal_id: str
    merchant_id: str
    amount_minor: int
    requested_by: str
    requested_by_key_id: int | None = None
    terms: WithdrawalTerms


class WithdrawalOpened(BaseModel):
    withdrawal_id: str
    status: WithdrawalStatus
    merchant_id: str
    amount_minor: int
    currency: str = "CNY"


class WithdrawalResult(BaseModel):
    withdrawal_id: str
    status: str  # a WithdrawalStatus, or REFUSED when nothing was frozen
    reason: str | None = None
    # An UNKNOWN payout's resolution one finance person proposed and a second must confirm.
    resolution_proposed: Literal["PAID", "FAILED"] | None = None
    resolution_proposed_by: str | None = None


class Decision(BaseModel):
    """Finance's approval or rejection of a withdrawal waiting for it."""

    kind: Literal["approve", "reject"]
    by: str
    by_key_id: int | None = None
    note: str = ""


class Resolution(BaseModel):
    """Finance settles an UNKNOWN payout once the bank has confirmed it either way."""

    outcome: Literal["PAID", "FAILED"]
    by: str
    by_key_id: int | None = None
    reason: str = ""
    bank_ref: str | None = None


def confirmation_refusal(proposal: Resolution, confirmation: Resolution) -> Refused | None:
    """Maker-checker on an UNKNOWN payout: money is declared paid or returned only when a second finance
    person confirms the first one's resolution. The refusal, or None when it may proceed."""
    if same_person(proposal.by, confirmation.by):
        return Refused(
            Refusal.SAME_PERSON, f"{proposal.by} proposed this resolution; another finance person must confirm it"
        )
    if proposal.outcome != confirmation.outcome:
        return Refused(
            Refusal.RESOLUTION_CONFLICT,
            f"{proposal.by} proposed {proposal.outcome}, not {confirmation.outcome}: only the proposal can be "
            "confirmed; while the two of you disagree the money stays frozen and the bank's own result still counts",
        )
    return None


class PayoutOutcome(BaseModel):
    """What the payout batch learned about one withdrawal (signalled to its flow), or finance's resolution."""

    withdrawal_id: str
    status: Literal["SUBMITTED", "PAID", "FAILED", "UNKNOWN"]
    batch_id: str | None = None
    bank_ref: str | None = None
    reason: str | None = None
    resolved_by: str | None = None
    resolved_by_key_id: int | None = None


class DecisionRecord(BaseModel):
    withdrawal_id: str
    decision: Decision


# ---- payout batches --------------------------------------------------------------------------
class PayoutTerms(BaseModel):
    batch_seconds: int
    max_items: int
    unknown_escalate_seconds: int
    notify_url: str


class OpenBatch(BaseModel):
    """A batch handed to the bank whose results are still awaited (carried over continue-as-new)."""

    batch_id: str
    withdrawal_ids: list[str]
    opened_at: datetime


class BankNotification(BaseModel):
    event_id: str
    event_type: str
    batch_no: str
    payout_no: str
    status: str
    failure_reason: str | None = None
    bank_ref: str | None = None


class BatcherInput(BaseModel):
    terms: PayoutTerms
    open_batches: list[OpenBatch] = Field(default_factory=list)
    batches_so_far: int = 0
    # Results for batches no longer followed, not yet passed on when the batcher continued as new.
    late_notifications: list[BankNotification] = Field(default_factory=list)


class ClaimRequest(BaseModel):
    batch_id: str
    max_items: int


class ClaimedBatch(BaseModel):
    batch_id: str
    withdrawal_ids: list[str]
    waiting: int  # queued withdrawals left for later batches


class BatchClosing(BaseModel):
    batch_id: str
    paid: int
    failed: int
    unknown: int


class BankPayoutItem(BaseModel):
    payout_no: str
    status: str  # PROCESSING, PAID, FAILED
    failure_reason: str | None = None
    bank_ref: str | None = None


class BankBatchAnswer(BaseModel):
    """The bank asked about a batch: `known` False is its definite "no such batch"."""

    known: bool
    items: list[BankPayoutItem] = Field(default_factory=list)


def batch_is_full(waiting: int, terms: PayoutTerms) -> bool:
    """A payout batch closes as soon as `max_items` queued withdrawals wait; otherwise at the end of its
    period (`batch_period`)."""
    return waiting >= terms.max_items


def batch_period(terms: PayoutTerms) -> float:
    """Seconds a payout batch collects at most before it closes."""
    return max(terms.batch_seconds, 0.001)


def nothing_was_paid(answer: BankBatchAnswer | None) -> bool:
    """After a refused submit, only the bank saying it holds no such batch proves nothing was paid; a refusal
    alone does not (the first submit may have landed and lost its answer), nor does a question it refused."""
    return answer is not None and not answer.known


def batches_to_follow(carried: list[OpenBatch], stored: list[OpenBatch]) -> list[OpenBatch]:
    """The batches a starting batcher follows: those its previous run carried over and those the database
    has at the bank (all of them when the batcher was lost), each with the withdrawals of both."""
    batches = {b.batch_id: b for b in carried}
    for b in stored:
        known = batches.get(b.batch_id)
        ids = sorted(set(b.withdrawal_ids) | set(known.withdrawal_ids if known else []))
        batches[b.batch_id] = (known or b).model_copy(update={"withdrawal_ids": ids})
    return list(batches.values())


LateVerdict = Literal["OPEN", "AGREES", "CONFLICT"]


def late_result(recorded: WithdrawalStatus, reported: str) -> LateVerdict:
    """A bank result (PAID or FAILED) for a withdrawal: OPEN while the withdrawal still waits for it; once the
    withdrawal is final (finance resolved it first), the result either agrees or contradicts it. A
    contradiction moves no money: it is surfaced for finance to settle with the bank."""
    if recorded not in FINAL:
        return "OPEN"
    return "AGREES" if recorded.value == reported else "CONFLICT"


def conflict_note(recorded: WithdrawalStatus, reported: str, reason: str | None, bank_ref: str | None) -> str:
    said = f"{reported}" + (f" ({reason})" if reason else "") + (f", bank ref {bank_ref}" if bank_ref else "")
    return f"the bank reported {said} after the withdrawal was recorded {recorded.value}"
