"""Withdrawal eligibility: status, verified account, clawback debt, balance, daily limit, approval."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta, timezone

import pytest
from hypothesis import given
from hypothesis import strategies as st

from domain.refusals import Refusal, Refused
from domain.withdrawal_eligibility import WithdrawalFacts, check_amount, check_eligible, day_start, opening_status
from domain.withdrawals import WithdrawalStatus, WithdrawalTerms

TERMS = WithdrawalTerms(
    daily_limit_minor=100_000, approval_min_minor=50_000, approval_remind_seconds=60, payout_bank="b"
)
OK = WithdrawalFacts(
    merchant_id="m-1",
    merchant_status="ACTIVE",
    currency="CNY",
    has_verified_account=True,
    available_minor=80_000,
    clawback_minor=0,
    requested_today_minor=0,
)


def refusal_of(facts: WithdrawalFacts, amount: int) -> Refusal | None:
    try:
        check_eligible(facts, amount, TERMS)
    except Refused as exc:
        return exc.code
    return None


@pytest.mark.parametrize(
    ("change", "amount", "code"),
    [
        ({}, 80_000, None),
        ({"merchant_status": "SUSPENDED"}, 1, Refusal.MERCHANT_NOT_ACTIVE),
        ({"has_verified_account": False}, 1, Refusal.NO_VERIFIED_BANK_ACCOUNT),
        ({"clawback_minor": -1}, 1, Refusal.BALANCE_NEGATIVE),
        ({}, 80_001, Refusal.INSUFFICIENT_BALANCE),
        ({"requested_today_minor": 30_000}, 70_001, Refusal.DAILY_LIMIT_EXCEEDED),
        ({"requested_today_minor": 30_000}, 70_000, None),
    ],
)
def test_each_reason_is_its_own_refusal(change: dict[str, object], amount: int, code: Refusal | None) -> None:
    assert refusal_of(replace(OK, **change), amount) == code  # type: ignore[arg-type]


def test_a_debt_is_named_before_the_balance() -> None:
    # Owing clawed-back refunds and short of balance: the merchant learns what blocks every withdrawal.
    with pytest.raises(Refused, match="owes the platform 500 CNY") as caught:
        check_eligible(replace(OK, clawback_minor=-500, available_minor=0), 10, TERMS)
    assert caught.value.code is Refusal.BALANCE_NEGATIVE


def test_amount_bounds_are_inclusive() -> None:
    check_amount(100, 100, 200)
    check_amount(200, 100, 200)
    for amount in (99, 201):
        with pytest.raises(Refused) as caught:
            check_amount(amount, 100, 200)
        assert caught.value.code is Refusal.AMOUNT_OUT_OF_RANGE


def test_approval_from_the_threshold_up() -> None:
    assert opening_status(49_999, TERMS) is WithdrawalStatus.QUEUED
    assert opening_status(50_000, TERMS) is WithdrawalStatus.PENDING_APPROVAL


def test_the_day_starts_at_midnight_utc_whatever_the_clock_says() -> None:
    shanghai = timezone(timedelta(hours=8))
    assert day_start(datetime(2026, 12, 1, 3, 0, tzinfo=shanghai)) == datetime(2026, 11, 30, tzinfo=UTC)


@given(
    available=st.integers(-(10**6), 10**7),
    clawback=st.integers(-(10**5), 10**5),
    today=st.integers(0, 2 * 10**5),
    amount=st.integers(1, 10**6),
)
def test_eligible_exactly_when_covered_within_the_limit_and_owing_nothing(
    available: int, clawback: int, today: int, amount: int
) -> None:
    facts = replace(OK, available_minor=available, clawback_minor=clawback, requested_today_minor=today)
    eligible = clawback >= 0 and amount <= available and today + amount <= TERMS.daily_limit_minor
    assert (refusal_of(facts, amount) is None) == eligible
