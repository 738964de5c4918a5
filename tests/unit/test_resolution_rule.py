"""Maker-checker on an UNKNOWN payout: the rule a second finance person's confirmation must pass."""

from __future__ import annotations

from domain.refusals import Refusal
from domain.withdrawals import Resolution, confirmation_refusal


def resolution(outcome: str, by: str) -> Resolution:
    return Resolution(outcome=outcome, by=by, reason="bank statement")  # type: ignore[arg-type]


def test_another_person_confirming_the_same_outcome_may_proceed() -> None:
    assert confirmation_refusal(resolution("PAID", "alice"), resolution("PAID", "bob")) is None


def test_the_proposer_cannot_confirm_even_with_another_key_or_spelling() -> None:
    refusal = confirmation_refusal(resolution("PAID", "alice"), resolution("PAID", " Alice "))
    assert refusal is not None and refusal.code is Refusal.SAME_PERSON


def test_a_confirmation_of_another_outcome_is_a_conflict() -> None:
    refusal = confirmation_refusal(resolution("PAID", "alice"), resolution("FAILED", "bob"))
    assert (
        refusal is not None and refusal.code is Refusal.RESOLUTION_CONFLICT and "alice proposed PAID" in refusal.detail
    )
