"""Withdrawal eligibility: whether a merchant may withdraw an amount now, and whether finance must approve
it (pure). The activity that opens a withdrawal loads these facts under a lock on the merchant, asks
this rule, and freezes the money in the same transaction.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

from domain.merchants import MerchantStatus
from domain.refusals import Refusal, Refused
from domain.withdrawals import WithdrawalStatus, WithdrawalTerms


@dataclass(frozen=True)
class WithdrawalFacts:
    merchant_id: str
    merchant_status: str  # a MerchantStatus, or one set by hand outside onboarding (e.g. suspended)
    currency: str
    has_verified_account: bool  # KYC confirmed the settlement account belongs to the merchant
    available_minor: int  # merchant:{m}:available
    clawback_minor: int  # merchant:{m}:clawback; below zero the merchant owes clawed-back refunds
    requested_today_minor: int  # withdrawals since the start of the day that still count (COUNTING)


def day_start(now: datetime) -> datetime:
    """The daily limit counts withdrawals from midnight UTC."""
    return now.astimezone(UTC).replace(hour=0, minute=0, second=0, microsecond=0)


def check_amount(amount_minor: int, min_minor: int, max_minor: int) -> None:
    """One withdrawal is at least the bank's minimum transfer and at most the platform's single maximum."""
    if not min_minor <= amount_minor <= max_minor:
        raise Refused(Refusal.AMOUNT_OUT_OF_RANGE, f"a withdrawal is between {min_minor} and {max_minor}")


def check_eligible(facts: WithdrawalFacts, amount_minor: int, terms: WithdrawalTerms) -> None:
    """In the order a merchant should hear the reasons: who it is, where the money goes, then the money."""
    m, cur = facts.merchant_id, facts.currency
    if facts.merchant_status != MerchantStatus.ACTIVE:
        raise Refused(Refusal.MERCHANT_NOT_ACTIVE, f"merchant {m} is {facts.merchant_status}, not ACTIVE")
    if not facts.has_verified_account:
        raise Refused(Refusal.NO_VERIFIED_BANK_ACCOUNT, f"merchant {m} has no settlement bank account verified by KYC")
    if facts.clawback_minor < 0:
        # A debt from refunds after settlement is paid from incoming settlements before money leaves.
        raise Refused(
            Refusal.BALANCE_NEGATIVE,
            f"merchant {m} owes the platform {-facts.clawback_minor} {cur} (clawed-back refunds); "
            "withdrawals wait until that is covered",
        )
    if amount_minor > facts.available_minor:
        raise Refused(
            Refusal.INSUFFICIENT_BALANCE,
            f"withdrawal of {amount_minor} exceeds the available balance of {facts.available_minor} {cur}",
        )
    if facts.requested_today_minor + amount_minor > terms.daily_limit_minor:
        raise Refused(
            Refusal.DAILY_LIMIT_EXCEEDED,
            f"withdrawal of {amount_minor} would exceed the daily limit of {terms.daily_limit_minor} {cur} "
            f"({facts.requested_today_minor} already requested today)",
        )


def opening_status(amount_minor: int, terms: WithdrawalTerms) -> WithdrawalStatus:
    """From the approval threshold up, finance approves before the money is queued for the bank."""
    if amount_minor >= terms.approval_min_minor:
        return WithdrawalStatus.PENDING_APPROVAL
    return WithdrawalStatus.QUEUED
