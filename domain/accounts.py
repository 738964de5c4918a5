"""The chart of accounts of the double-entry ledger (pure, no I/O): which account codes exist, and for
each its kind, normal side and whether its balance may go negative (ARCHITECTURE.md §2).

Account codes are strings such as ``merchant:m-42:available``; the pattern of a code decides. The
posting rules that move money between these accounts are in `domain/ledger.py`.
"""

from __future__ import annotations

import re
from enum import StrEnum

from pydantic import BaseModel


class Side(StrEnum):
    DEBIT = "D"
    CREDIT = "C"


class AccountKind(StrEnum):
    ASSET = "asset"
    LIABILITY = "liability"
    REVENUE = "revenue"
    EXPENSE = "expense"


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
    # What the platform spends on promotions (its share of coupon discounts): debited at capture,
    # credited back when a refund reverses a subsidy (out of escrow before settlement; after it, taken
    # back from those the settlement paid it to, within REFUND_AFTER_SETTLEMENT).
    (
        re.compile(r"platform:marketing"),
        AccountSpec(kind=AccountKind.EXPENSE, normal_side=Side.DEBIT, may_go_negative=True),
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


def signed_delta(spec: AccountSpec, side: Side, amount_minor: int) -> int:
    """Change of an account's balance (kept in its normal direction) for one line."""
    return amount_minor if side is spec.normal_side else -amount_minor


# ---- account codes --------------------------------------------------------------------------
ESCROW = "platform:escrow"
COMMISSION = "platform:commission_revenue"
SUSPENSE = "platform:suspense"
MARKETING = "platform:marketing"
CHANNEL_FEES = "platform:channel_fees"


# Money seeded without a payment (demo data, test fixtures, benchmarks) arrives through this channel, which
# no outside party plays: no channel's own view of what it holds may ever include it.
SEED_CHANNEL = "seed"


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
