"""Refund rules: refundable amount, the after-sale window, orders being settled, clawback sources."""

from __future__ import annotations

from dataclasses import replace

import pytest
from hypothesis import given
from hypothesis import strategies as st

from domain.refund_rules import ChannelStep, RefundFacts, channel_step, check_refund, merchant_sources, refundable
from domain.refunds import RefundOrigin
from domain.refusals import Refusal, Refused

DELIVERED = RefundFacts(
    order_no="ORD1",
    order_status="DELIVERED",
    after_sale_closed=False,
    settlement_cycle=None,
    settled=False,
    captured_minor=10_000,
    currency="CNY",
    held_minor=0,
)


def refusal_of(facts: RefundFacts, amount: int, origin: RefundOrigin = RefundOrigin.API) -> Refusal | None:
    try:
        check_refund(facts, amount, origin)
    except Refused as exc:
        return exc.code
    return None


@pytest.mark.parametrize(
    ("change", "origin", "code"),
    [
        ({}, RefundOrigin.API, None),
        ({"order_status": "COMPLETED"}, RefundOrigin.API, None),
        ({"captured_minor": None}, RefundOrigin.API, Refusal.NOTHING_PAID),
        ({"order_status": "IN_SERVICE"}, RefundOrigin.API, Refusal.NOT_REFUNDABLE_NOW),
        ({"after_sale_closed": True}, RefundOrigin.API, Refusal.AFTER_SALE_CLOSED),
        # finance and the platform's own flows refund outside the window
        ({"after_sale_closed": True}, RefundOrigin.FINANCE, None),
        ({"order_status": "AWAITING_MERCHANT"}, RefundOrigin.ORDER, None),
        ({"settlement_cycle": "2026-11-30"}, RefundOrigin.FINANCE, Refusal.BEING_SETTLED),
        ({"settlement_cycle": "2026-11-30", "settled": True, "after_sale_closed": True}, RefundOrigin.FINANCE, None),
        ({"held_minor": 9_000}, RefundOrigin.API, Refusal.REFUND_EXCEEDS_REFUNDABLE),
    ],
)
def test_each_reason_is_its_own_refusal(change: dict[str, object], origin: RefundOrigin, code: Refusal | None) -> None:
    assert refusal_of(replace(DELIVERED, **change), 5_000, origin) == code  # type: ignore[arg-type]


def test_the_refusal_says_what_is_left() -> None:
    with pytest.raises(Refused, match=r"\(4000 of 10000 CNY\)"):
        check_refund(replace(DELIVERED, held_minor=6_000), 4_001, RefundOrigin.API)


@given(captured=st.integers(1, 10**9), held=st.integers(0, 10**9), amount=st.integers(1, 10**9))
def test_never_promises_back_more_than_was_captured(captured: int, held: int, amount: int) -> None:
    facts = replace(DELIVERED, captured_minor=captured, held_minor=min(held, captured))
    admitted = refusal_of(facts, amount) is None
    assert admitted == (amount <= refundable(captured, facts.held_minor))
    if admitted:
        assert facts.held_minor + amount <= captured


@given(share=st.integers(-(10**6), 10**9), available=st.integers(-(10**9), 10**9))
def test_the_merchant_share_is_split_exactly_and_available_never_goes_below_zero_by_it(
    share: int, available: int
) -> None:
    from_available, from_clawback = merchant_sources(share, available)
    assert from_available + from_clawback == share
    if share > 0:
        assert 0 <= from_available <= max(available, 0) and from_clawback >= 0
        assert from_clawback == 0 or from_available == max(available, 0)  # available is used up first
    else:
        assert from_clawback == 0


# ---- when a refund at the channel is handed to finance ------------------------------------------
@pytest.mark.parametrize(
    ("status", "refused", "accepted", "step"),
    [
        ("SUCCESS", False, True, ChannelStep.REFUNDED),
        ("SUCCESS", True, False, ChannelStep.REFUNDED),  # a refused retry of a request that had landed
        ("FAILED", False, True, ChannelStep.ESCALATE),
        ("MISSING", True, False, ChannelStep.ESCALATE),  # refused, and the query proves it has none
        ("MISSING", False, False, ChannelStep.REQUEST_AGAIN),  # timed out and never arrived
        ("MISSING", False, True, ChannelStep.ASK_AGAIN),  # accepted: the query lags behind
        ("PROCESSING", False, True, ChannelStep.ASK_AGAIN),
        ("PROCESSING", True, True, ChannelStep.ASK_AGAIN),
        (None, True, False, ChannelStep.ASK_AGAIN),  # refused: the query decides, not the refusal
        (None, False, False, ChannelStep.ASK_AGAIN),  # no answer at all: ask
    ],
)
def test_only_a_definite_failure_or_a_proven_missing_refund_escalates(
    status: str | None, refused: bool, accepted: bool, step: ChannelStep
) -> None:
    assert channel_step(status, refused=refused, accepted=accepted) is step


@given(
    st.sampled_from([None, "PROCESSING", "MISSING", "SUCCESS", "FAILED", "UNKNOWN"]),
    st.booleans(),
    st.booleans(),
)
def test_escalation_needs_a_definite_word(status: str | None, refused: bool, accepted: bool) -> None:
    if channel_step(status, refused=refused, accepted=accepted) is ChannelStep.ESCALATE:
        assert status == "FAILED" or (status == "MISSING" and refused)
