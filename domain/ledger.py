"""Chart of accounts and posting rules of the double-entry ledger (pure, no I/O).

Each posting rule is a function that returns a balanced `Posting`; `db.ledger.post` persists it.
Account codes are strings such as ``merchant:m-42:available``; the pattern of a code decides its
kind, normal side and whether its balance may go negative.
"""

from __future__ import annotations

import hashlib
import json
import re
from enum import StrEnum

from pydantic import BaseModel, Field, model_validator

from domain.money import CURRENCIES


class Side(StrEnum):
    DEBIT = "D"
    CREDIT = "C"


class AccountKind(StrEnum):
    ASSET = "asset"
    LIABILITY = "liability"
    REVENUE = "revenue"
    EXPENSE = "expense"


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


class AccountSpec(BaseModel):
    kind: AccountKind
    normal_side: Side
    may_go_negative: bool


_SEGMENT = r"[A-Za-z0-9_.\-]+"
# (pattern, spec). Channel and bank clearing are what outside parties owe us or we owe them: they
# swing both ways during the day. Customer and merchant money we hold must never go negative.
_CHART: list[tuple[re.Pattern[str], AccountSpec]] = [
    (
        re.compile(rf"channel:{_SEGMENT}:clearing"),
        AccountSpec(kind=AccountKind.ASSET, normal_side=Side.DEBIT, may_go_negative=True),
    ),
    (
        re.compile(rf"bank:{_SEGMENT}:payout_clearing"),
        AccountSpec(kind=AccountKind.ASSET, normal_side=Side.DEBIT, may_go_negative=True),
    ),
    (
        re.compile(r"platform:suspense"),
        AccountSpec(kind=AccountKind.ASSET, normal_side=Side.DEBIT, may_go_negative=True),
    ),
    # What the channels charge, booked per day from their statements; what finance writes off or
    # adjusts after reconciliation. Expenses and the adjustments account swing both ways (a refund
    # gives a fee back; a difference can be in the platform's favour).
    (
        re.compile(r"platform:(channel_fees|recon_writeoff|recon_adjustments)"),
        AccountSpec(kind=AccountKind.EXPENSE, normal_side=Side.DEBIT, may_go_negative=True),
    ),
    (
        re.compile(r"platform:escrow"),
        AccountSpec(kind=AccountKind.LIABILITY, normal_side=Side.CREDIT, may_go_negative=False),
    ),
    (
        re.compile(r"platform:commission_revenue"),
        AccountSpec(kind=AccountKind.REVENUE, normal_side=Side.CREDIT, may_go_negative=True),
    ),
    # A clawback beyond the available balance: negative means the merchant owes the platform.
    (
        re.compile(rf"merchant:{_SEGMENT}:clawback"),
        AccountSpec(kind=AccountKind.LIABILITY, normal_side=Side.CREDIT, may_go_negative=True),
    ),
    (
        re.compile(rf"merchant:{_SEGMENT}:(available|withdrawing|deposit)"),
        AccountSpec(kind=AccountKind.LIABILITY, normal_side=Side.CREDIT, may_go_negative=False),
    ),
    (
        re.compile(rf"promoter:{_SEGMENT}:payable"),
        AccountSpec(kind=AccountKind.LIABILITY, normal_side=Side.CREDIT, may_go_negative=False),
    ),
]


class UnknownAccount(ValueError):
    pass


def account_spec(code: str) -> AccountSpec:
    for pattern, spec in _CHART:
        if pattern.fullmatch(code):
            return spec
    raise UnknownAccount(f"account code {code!r} is not in the chart of accounts")


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


def signed_delta(spec: AccountSpec, side: Side, amount_minor: int) -> int:
    """Change of an account's balance (kept in its normal direction) for one line."""
    return amount_minor if side is spec.normal_side else -amount_minor


# ---- account codes --------------------------------------------------------------------------
ESCROW = "platform:escrow"
COMMISSION = "platform:commission_revenue"
SUSPENSE = "platform:suspense"
CHANNEL_FEES = "platform:channel_fees"


def channel_clearing(channel: str) -> str:
    return f"channel:{channel}:clearing"


def bank_payout(bank: str) -> str:
    return f"bank:{bank}:payout_clearing"


def merchant_account(merchant_id: str, purpose: str) -> str:
    return f"merchant:{merchant_id}:{purpose}"


def merchant_accounts(merchant_id: str) -> list[str]:
    return [merchant_account(merchant_id, p) for p in ("available", "withdrawing", "deposit")]


def promoter_payable(promoter_id: str) -> str:
    return f"promoter:{promoter_id}:payable"


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
) -> Posting:
    """Claw back a refund of a settled order: the merchant's share from its available balance and, for
    what that cannot cover, from its clawback account (a debt the merchant owes), plus the commission and
    the promoter's share. The money leaves through the channel, or through the bank (`paid_from`) when
    finance transfers it by hand (MANUAL_REFUND_AFTER_SETTLEMENT). A negative share (a rounding unit an
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
    total = from_available + from_clawback + commission_share + promoter_share
    return Posting(
        code=TxCode.MANUAL_REFUND_AFTER_SETTLEMENT if paid_from else TxCode.REFUND_AFTER_SETTLEMENT,
        idempotency_key=key,
        reference=ref,
        currency=currency,
        lines=[*legs, Line(account=paid_from or channel_clearing(channel), side=Side.CREDIT, amount_minor=total)],
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
