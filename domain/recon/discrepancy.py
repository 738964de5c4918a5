"""What to do about one reconciliation discrepancy (pure): the automatic action where the rule is
clear, finance otherwise; which finance resolutions fit; the postings that park and clear a difference.

The automatic actions all go through the flows that own the records (ARCHITECTURE.md §4): the waiting
payment flow is told the channel has the money, a refund flow returns it, the refund or withdrawal
flow hears the party's result. Nothing here writes a status.
"""

from __future__ import annotations

from enum import StrEnum

from pydantic import BaseModel, Field

from domain import ledger
from domain.recon.runs import DiscrepancyTerms, DiscrepancyType
from domain.refusals import Refusal, Refused


class AutoAction(StrEnum):
    CAPTURE = "CAPTURE"  # LONG, the order still waits for payment: tell its payment flow
    CAPTURE_AND_REFUND = "CAPTURE_AND_REFUND"  # LONG, the order is cancelled: record the money, return it
    REFUND_EXTRA = "REFUND_EXTRA"  # DUPLICATE_PAYMENT through a second channel not refunded yet
    COMPLETE_REFUND = "COMPLETE_REFUND"  # the channel made a refund the platform still follows
    PAYOUT_RESULT = "PAYOUT_RESULT"  # the bank's statement says what became of a payout
    HOLD = "HOLD"  # SHORT: wait for a later statement
    NOTHING = "NOTHING"  # the platform already agrees with the statement (it caught up meanwhile)
    FINANCE = "FINANCE"  # no clear rule: a person decides


class FinanceAction(StrEnum):
    COMPLETE_ORDER = "complete_order"
    REFUND = "refund"
    ADJUST = "adjust"
    WRITE_OFF = "write_off"


# Resolutions that move money by a person's word alone: a second finance person approves them.
NEEDS_CHECKER = frozenset({FinanceAction.ADJUST, FinanceAction.WRITE_OFF})
# Differences that sit in suspense while finance decides (the others are followed by a flow).
PARKED_TYPES = frozenset({DiscrepancyType.AMOUNT_MISMATCH, DiscrepancyType.SHORT})


class DiscrepancyFacts(BaseModel):
    """A discrepancy and the platform's records it is about, as they are now."""

    discrepancy_id: int
    source: str
    type: DiscrepancyType
    kind: str  # PAYMENT, REFUND, PAYOUT
    our_no: str
    status: str
    statement_minor: int | None = None
    platform_minor: int | None = None
    currency: str = "CNY"
    party_no: str | None = None  # the party's own transaction number on the statement line
    statement_status: str | None = None
    order_no: str | None = None
    order_status: str | None = None
    payment_status: str | None = None
    refund_status: str | None = None
    withdrawal_status: str | None = None
    extra_channel: str | None = None  # the second channel a duplicate payment was captured through
    extra_refunded: bool = False  # that second payment's refund exists


class Plan(BaseModel):
    action: AutoAction
    reason: str


def decide(f: DiscrepancyFacts) -> Plan:
    """The automatic action for a discrepancy, or FINANCE with why there is none."""
    t = f.type
    if t is DiscrepancyType.SHORT:
        return Plan(action=AutoAction.HOLD, reason="held: a later statement may carry it (day cut)")
    if t is DiscrepancyType.LONG and f.kind == "PAYMENT":
        return _long_payment(f)
    if t is DiscrepancyType.DUPLICATE_PAYMENT:
        if f.extra_channel is None:
            return _finance("charged twice at one channel: the platform has no second capture to refund")
        if f.extra_refunded:
            return Plan(action=AutoAction.NOTHING, reason=f"the {f.extra_channel} payment is already refunded")
        return Plan(action=AutoAction.REFUND_EXTRA, reason=f"refund the extra payment through {f.extra_channel}")
    if t in (DiscrepancyType.STATUS_MISMATCH, DiscrepancyType.LONG) and f.kind == "REFUND":
        if f.refund_status == "SUCCEEDED":
            return Plan(action=AutoAction.NOTHING, reason="the refund has completed here meanwhile")
        if f.refund_status == "PROCESSING":
            return Plan(action=AutoAction.COMPLETE_REFUND, reason="the channel made the refund: complete it")
        return _finance(f"the channel made refund {f.our_no}, which is {f.refund_status or 'unknown'} here")
    if t is DiscrepancyType.STATUS_MISMATCH and f.kind == "PAYOUT":
        if f.withdrawal_status == f.statement_status:
            return Plan(action=AutoAction.NOTHING, reason=f"the payout is {f.statement_status} here meanwhile")
        if f.withdrawal_status in ("SUBMITTED", "UNKNOWN") and f.statement_status in ("PAID", "FAILED"):
            return Plan(action=AutoAction.PAYOUT_RESULT, reason=f"the bank's statement says {f.statement_status}")
        return _finance(f"{f.statement_status} at the bank, {f.withdrawal_status} here")
    return _finance(f"{t.value} of {f.kind.lower()} {f.our_no}: no automatic rule")


def _long_payment(f: DiscrepancyFacts) -> Plan:
    if f.payment_status == "SUCCEEDED":
        return Plan(action=AutoAction.NOTHING, reason="the payment was captured here meanwhile")
    if f.order_status == "AWAITING_PAYMENT" and f.payment_status == "PENDING":
        return Plan(action=AutoAction.CAPTURE, reason="the order still waits: its payment flow captures it")
    if f.order_status == "CANCELLED" and f.payment_status in ("CLOSED", "FAILED"):
        return Plan(action=AutoAction.CAPTURE_AND_REFUND, reason="the order is cancelled: refund the payment")
    return _finance(f"paid at the channel; order {f.order_no} is {f.order_status}, payment {f.payment_status}")


def _finance(reason: str) -> Plan:
    return Plan(action=AutoAction.FINANCE, reason=reason)


def check_finance_action(f: DiscrepancyFacts, action: FinanceAction) -> None:
    """Refuse a resolution that does not fit the discrepancy's facts."""
    if action is FinanceAction.COMPLETE_ORDER and not (f.kind == "PAYMENT" and f.payment_status == "PENDING"):
        raise Refused(Refusal.ACTION_NOT_APPLICABLE, "complete_order is for a payment whose order still waits for it")
    uncaptured = f.kind == "PAYMENT" and f.payment_status in ("CLOSED", "FAILED") and f.statement_minor
    if action is FinanceAction.REFUND and not uncaptured:
        raise Refused(Refusal.ACTION_NOT_APPLICABLE, "refund is for money the channel has and the platform closed")
    if action in NEEDS_CHECKER and f.kind == "PAYOUT":
        raise Refused(Refusal.ACTION_NOT_APPLICABLE, "a payout is resolved on its withdrawal, with the bank")


def difference(f: DiscrepancyFacts) -> int:
    """How much the party's clearing account holds beyond what the platform recorded (minor units,
    signed): a refund the statement shows larger took more out."""
    d = (f.statement_minor or 0) - (f.platform_minor or 0)
    return -d if f.kind == "REFUND" else d


def parked(f: DiscrepancyFacts) -> ledger.Posting | None:
    """RECON_SUSPENSE: the channel's clearing is brought to what the statement says and the unexplained
    difference waits in suspense for finance."""
    d = difference(f) if f.type in PARKED_TYPES and f.kind in ("PAYMENT", "REFUND") else 0
    if d == 0:
        return None
    clearing = ledger.channel_clearing(f.source)
    debit, credit = (clearing, ledger.SUSPENSE) if d > 0 else (ledger.SUSPENSE, clearing)
    return _legs(ledger.TxCode.RECON_SUSPENSE, f"recon-suspense:{f.discrepancy_id}", f, abs(d), debit, credit)


def cleared(f: DiscrepancyFacts, action: FinanceAction) -> ledger.Posting | None:
    """RECON_ADJUST: finance's adjust or write-off takes the parked difference out of suspense."""
    if action not in NEEDS_CHECKER or (p := parked(f)) is None:
        return None
    account = "platform:recon_adjustments" if action is FinanceAction.ADJUST else "platform:recon_writeoff"
    d = difference(f)
    debit, credit = (ledger.SUSPENSE, account) if d > 0 else (account, ledger.SUSPENSE)
    key = f"recon-adjust:{f.discrepancy_id}"
    return _legs(ledger.TxCode.RECON_ADJUST, key, f, p.lines[0].amount_minor, debit, credit)


def _legs(code: ledger.TxCode, key: str, f: DiscrepancyFacts, amount: int, debit: str, credit: str) -> ledger.Posting:
    return ledger.Posting(
        code=code,
        idempotency_key=key,
        reference=f"discrepancy-{f.discrepancy_id}",
        currency=f.currency,
        lines=[
            ledger.Line(account=debit, side=ledger.Side.DEBIT, amount_minor=amount),
            ledger.Line(account=credit, side=ledger.Side.CREDIT, amount_minor=amount),
        ],
    )


# ---- the flow's contract ------------------------------------------------------------------------
class DiscrepancyInput(BaseModel):
    discrepancy_id: int
    terms: DiscrepancyTerms


class FinanceDecision(BaseModel):
    action: FinanceAction
    reason: str = Field(min_length=1, max_length=500)
    by: str
    by_key_id: int | None = None


class Approval(BaseModel):
    by: str
    by_key_id: int | None = None
    note: str = Field(default="", max_length=500)


class DiscrepancyOutcome(BaseModel):
    """What the flow records on the discrepancy (one transaction, with any posting)."""

    discrepancy_id: int
    status: str
    action: str
    note: str
    by: str | None = None


class DiscrepancyResult(BaseModel):
    discrepancy_id: int
    status: str
    action: str | None = None
    note: str = ""
    proposed_by: str | None = None
