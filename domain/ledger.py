"""Posting rules of the double-entry ledger (pure, no I/O).

Each posting rule is a function that returns a balanced `Posting`; `db.ledger.post` persists it. The
accounts a posting may touch are the chart's (`domain/accounts.py`).
"""

from __future__ import annotations

import hashlib
import json
from enum import StrEnum

from pydantic import BaseModel, Field, model_validator

from domain.accounts import (
    CHANNEL_FEES,
    COMMISSION,
    ESCROW,
    MARKETING,
    SUSPENSE,
    Side,
    account_spec,
    bank_payout,
    channel_clearing,
    merchant_account,
    promoter_payable,
)
from domain.money import CURRENCIES


class TxCode(StrEnum):
    PAYMENT_CAPTURED = "PAYMENT_CAPTURED"
    REFUND_BEFORE_SETTLEMENT = "REFUND_BEFORE_SETTLEMENT"
    SETTLEMENT = "SETTLEMENT"
    REFUND_AFTER_SETTLEMENT = "REFUND_AFTER_SETTLEMENT"
    WITHDRAWAL_REQUESTED = "WITHDRAWAL_REQUESTED"
    WITHDRAWAL_PAID = "WITHDRAWAL_PAID"
    WITHDRAWAL_FAILED = "WITHDRAWAL_FAILED"
    DEPOSIT_PAID = "DEPOSIT_PAID"
    MANUAL_REFUND_PAID = "MANUAL_REFUND_PAID"
    MANUAL_REFUND_AFTER_SETTLEMENT = "MANUAL_REFUND_AFTER_SETTLEMENT"
    RECON_SUSPENSE = "RECON_SUSPENSE"
    RECON_ADJUST = "RECON_ADJUST"
    CHANNEL_FEE = "CHANNEL_FEE"
    PROMOTION_SUBSIDY = "PROMOTION_SUBSIDY"
    PROMOTION_SUBSIDY_REVERSED = "PROMOTION_SUBSIDY_REVERSED"


class Line(BaseModel):
    account: str
    side: Side
    amount_minor: int = Field(gt=0)


class Posting(BaseModel):
    """One journal entry to be written: balanced, single-currency, keyed for idempotency."""

    code: TxCode
    idempotency_key: str = Field(min_length=1, max_length=200)
    reference: str = Field(default="", max_length=200)
    currency: str
    lines: list[Line] = Field(min_length=2)

    @model_validator(mode="after")
    def _balanced(self) -> Posting:
        if self.currency not in CURRENCIES:
            raise ValueError(f"unsupported currency {self.currency!r}")
        debits = sum(ln.amount_minor for ln in self.lines if ln.side is Side.DEBIT)
        credits = sum(ln.amount_minor for ln in self.lines if ln.side is Side.CREDIT)
        if debits != credits:
            raise ValueError(f"unbalanced entry: debits {debits} != credits {credits}")
        for ln in self.lines:
            account_spec(ln.account)
        return self

    def content_hash(self) -> str:
        """Hash of what the entry says, to tell a true repeat from a different entry reusing a key."""
        body = {
            "code": self.code.value,
            "reference": self.reference,
            "currency": self.currency,
            "lines": [[ln.account, ln.side.value, ln.amount_minor] for ln in self.lines],
        }
        return hashlib.sha256(json.dumps(body, sort_keys=True, separators=(",", ":")).encode()).hexdigest()


# ---- posting rules (ARCHITECTURE.md §2) ------------------------------------------------------
def _two_legs(code: TxCode, key: str, ref: str, currency: str, amount: int, debit: str, credit: str) -> Posting:
    return Posting(
        code=code,
        idempotency_key=key,
        reference=ref,
        currency=currency,
        lines=[
            Line(account=debit, side=Side.DEBIT, amount_minor=amount),
            Line(account=credit, side=Side.CREDIT, amount_minor=amount),
        ],
    )


def payment_captured(key: str, ref: str, currency: str, amount: int, channel: str) -> Posting:
    return _two_legs(TxCode.PAYMENT_CAPTURED, key, ref, currency, amount, channel_clearing(channel), ESCROW)


def promotion_subsidy(key: str, ref: str, currency: str, amount: int) -> Posting:
    """The platform-funded part of an order's discount joins the customer's payment in escrow."""
    return _two_legs(TxCode.PROMOTION_SUBSIDY, key, ref, currency, amount, MARKETING, ESCROW)


def promotion_subsidy_reversed(key: str, ref: str, currency: str, amount: int) -> Posting:
    """A refund before settlement takes the matching share of the subsidy back out of escrow."""
    return _two_legs(TxCode.PROMOTION_SUBSIDY_REVERSED, key, ref, currency, amount, ESCROW, MARKETING)


def refund_before_settlement(key: str, ref: str, currency: str, amount: int, channel: str) -> Posting:
    return _two_legs(TxCode.REFUND_BEFORE_SETTLEMENT, key, ref, currency, amount, ESCROW, channel_clearing(channel))


def withdrawal_requested(key: str, ref: str, currency: str, amount: int, merchant_id: str) -> Posting:
    return _two_legs(
        TxCode.WITHDRAWAL_REQUESTED,
        key,
        ref,
        currency,
        amount,
        merchant_account(merchant_id, "available"),
        merchant_account(merchant_id, "withdrawing"),
    )


def withdrawal_paid(key: str, ref: str, currency: str, amount: int, merchant_id: str, bank: str) -> Posting:
    return _two_legs(
        TxCode.WITHDRAWAL_PAID,
        key,
        ref,
        currency,
        amount,
        merchant_account(merchant_id, "withdrawing"),
        bank_payout(bank),
    )


def withdrawal_failed(key: str, ref: str, currency: str, amount: int, merchant_id: str) -> Posting:
    return _two_legs(
        TxCode.WITHDRAWAL_FAILED,
        key,
        ref,
        currency,
        amount,
        merchant_account(merchant_id, "withdrawing"),
        merchant_account(merchant_id, "available"),
    )


def deposit_paid(key: str, ref: str, currency: str, amount: int, channel: str, merchant_id: str) -> Posting:
    return _two_legs(
        TxCode.DEPOSIT_PAID,
        key,
        ref,
        currency,
        amount,
        channel_clearing(channel),
        merchant_account(merchant_id, "deposit"),
    )


def manual_refund_paid(key: str, ref: str, currency: str, amount: int, bank: str) -> Posting:
    return _two_legs(TxCode.MANUAL_REFUND_PAID, key, ref, currency, amount, ESCROW, bank_payout(bank))


def settlement(
    key: str,
    ref: str,
    currency: str,
    *,
    merchant_id: str,
    merchant_net: int,
    commission: int,
    promoters: dict[str, int] | None = None,
) -> Posting:
    """Release escrow (gross − refunds) to the merchant's net, platform commission and promoters."""
    credits = (
        [Line(account=merchant_account(merchant_id, "available"), side=Side.CREDIT, amount_minor=merchant_net)]
        if merchant_net
        else []
    )
    if commission:
        credits.append(Line(account=COMMISSION, side=Side.CREDIT, amount_minor=commission))
    for promoter_id, amount in sorted((promoters or {}).items()):
        if amount:
            credits.append(Line(account=promoter_payable(promoter_id), side=Side.CREDIT, amount_minor=amount))
    released = sum(ln.amount_minor for ln in credits)
    return Posting(
        code=TxCode.SETTLEMENT,
        idempotency_key=key,
        reference=ref,
        currency=currency,
        lines=[Line(account=ESCROW, side=Side.DEBIT, amount_minor=released), *credits],
    )


def refund_after_settlement(
    key: str,
    ref: str,
    currency: str,
    *,
    channel: str,
    merchant_id: str,
    from_available: int,
    from_clawback: int,
    commission_share: int,
    promoter_id: str | None = None,
    promoter_share: int = 0,
    paid_from: str | None = None,
    subsidy: int = 0,
) -> Posting:
    """Claw back a refund of a settled order: the merchant's share from its available balance and, for
    what that cannot cover, from its clawback account (a debt the merchant owes), plus the commission and
    the promoter's share. Those shares are of the refund's gross: the customer's money, which leaves
    through the channel, or through the bank (`paid_from`) when finance transfers it by hand
    (MANUAL_REFUND_AFTER_SETTLEMENT), and the refund's share of the promotion subsidy the settlement paid
    out (`subsidy`), which goes back to the platform's marketing. A negative share (a rounding unit an
    earlier partial refund took) is credited back to its account."""
    legs = []
    for account, amount in (
        (merchant_account(merchant_id, "available"), from_available),
        (merchant_account(merchant_id, "clawback"), from_clawback),
        (COMMISSION, commission_share),
        (promoter_payable(promoter_id) if promoter_id else "", promoter_share),
    ):
        if amount:
            if not account:
                raise ValueError("a promoter share needs the promoter")
            side = Side.DEBIT if amount > 0 else Side.CREDIT
            legs.append(Line(account=account, side=side, amount_minor=abs(amount)))
    if subsidy < 0:
        raise ValueError("a subsidy share is never negative")
    total = from_available + from_clawback + commission_share + promoter_share
    back = [Line(account=MARKETING, side=Side.CREDIT, amount_minor=subsidy)] if subsidy else []
    return Posting(
        code=TxCode.MANUAL_REFUND_AFTER_SETTLEMENT if paid_from else TxCode.REFUND_AFTER_SETTLEMENT,
        idempotency_key=key,
        reference=ref,
        currency=currency,
        lines=[
            *legs,
            Line(account=paid_from or channel_clearing(channel), side=Side.CREDIT, amount_minor=total - subsidy),
            *back,
        ],
    )


def recon_suspense(key: str, ref: str, currency: str, amount: int, *, credit: str) -> Posting:
    """Park an unexplained difference in suspense until it is resolved."""
    return _two_legs(TxCode.RECON_SUSPENSE, key, ref, currency, amount, SUSPENSE, credit)


def recon_adjust(key: str, ref: str, currency: str, amount: int, *, debit: str) -> Posting:
    """Clear a suspense balance into the account the resolution names."""
    return _two_legs(TxCode.RECON_ADJUST, key, ref, currency, amount, debit, SUSPENSE)


def channel_fee(key: str, ref: str, currency: str, amount: int, channel: str) -> Posting:
    """A day's fees the channel kept, from its statement: an expense, out of what it owes us."""
    return _two_legs(TxCode.CHANNEL_FEE, key, ref, currency, amount, CHANNEL_FEES, channel_clearing(channel))
