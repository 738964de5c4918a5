"""Promotions rules: discount, eligibility (one code per reason), allocation to the cent, funding split."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from hypothesis import assume, given
from hypothesis import strategies as st
from pydantic import ValidationError

from domain import promotions as p
from domain.refusals import Refusal, Refused

NOW = datetime(2026, 12, 1, 9, 0, tzinfo=UTC)


def terms(**kw: Any) -> p.CampaignTerms:
    base: dict[str, Any] = {
        "name": "winter",
        "kind": "full_reduction",
        "threshold_minor": 1000,
        "amount_minor": 300,
        "funded_by": "platform",
        "budget_minor": 10_000,
        "valid_from": NOW - timedelta(days=1),
        "valid_to": NOW + timedelta(days=1),
    }
    base.update(kw)
    return p.CampaignTerms(**base)


def facts(t: p.CampaignTerms | None = None, **kw: Any) -> p.CouponFacts:
    base: dict[str, Any] = {
        "coupon_id": "c1",
        "campaign_id": "k1",
        "customer_id": "cust",
        "status": p.CouponStatus.ISSUED,
        "terms": t or terms(),
        "spent_minor": 0,
        "used_by_customer": 0,
    }
    base.update(kw)
    return p.CouponFacts(**base)


LINES = [p.Line("a", "food", 800), p.Line("b", "cleaning", 400)]


def apply(*cs: p.CouponFacts, lines: list[p.Line] = LINES, merchant: str = "m1") -> list[p.Applied]:
    return p.apply(list(cs), customer_id="cust", merchant_id=merchant, lines=lines, now=NOW)


def test_full_reduction_allocates_by_largest_remainder() -> None:
    (a,) = apply(facts())
    assert a.discount_minor == 300
    assert a.per_item == [200, 100]
    assert a.subsidy_minor == 300 and a.subsidy_per_item == [200, 100]


def test_percent_capped_and_shared_funding() -> None:
    t = terms(
        kind="percent",
        threshold_minor=0,
        amount_minor=None,
        percent_bps=1500,
        cap_minor=150,
        funded_by="shared",
        platform_share_bps=3333,
    )
    (a,) = apply(facts(t))
    assert a.discount_minor == 150  # 15% of 1200 = 180, capped
    assert a.subsidy_minor == 50  # 33.33% of 150 rounded half-up
    assert sum(a.subsidy_per_item) == 50 and all(s <= d for s, d in zip(a.subsidy_per_item, a.per_item, strict=True))


def test_merchant_funded_has_no_subsidy() -> None:
    (a,) = apply(facts(terms(funded_by="merchant")))
    assert a.subsidy_minor == 0 and a.subsidy_per_item == [0, 0]


def test_category_scope_discounts_only_covered_items() -> None:
    (a,) = apply(facts(terms(kind="direct", threshold_minor=0, amount_minor=1000, category_ids=["cleaning"])))
    assert a.per_item == [0, 400]  # never more than the covered goods


@pytest.mark.parametrize(
    ("fact", "merchant", "code"),
    [
        (facts(customer_id="other"), "m1", Refusal.COUPON_NOT_YOURS),
        (facts(status=p.CouponStatus.RESERVED), "m1", Refusal.COUPON_ALREADY_USED),
        (facts(status=p.CouponStatus.CONSUMED), "m1", Refusal.COUPON_ALREADY_USED),
        (
            facts(terms(valid_from=NOW + timedelta(hours=1), valid_to=NOW + timedelta(days=1))),
            "m1",
            Refusal.CAMPAIGN_NOT_ACTIVE,
        ),
        (facts(terms(valid_from=NOW - timedelta(days=2), valid_to=NOW)), "m1", Refusal.CAMPAIGN_NOT_ACTIVE),
        (facts(terms(merchant_ids=["m2"])), "m1", Refusal.COUPON_NOT_APPLICABLE),
        (facts(terms(category_ids=["x"])), "m1", Refusal.COUPON_NOT_APPLICABLE),
        (facts(terms(threshold_minor=1201)), "m1", Refusal.BELOW_THRESHOLD),
        (facts(used_by_customer=1), "m1", Refusal.CUSTOMER_LIMIT_REACHED),
        (facts(spent_minor=9_701), "m1", Refusal.BUDGET_EXHAUSTED),
    ],
)
def test_each_refusal_reason(fact: p.CouponFacts, merchant: str, code: Refusal) -> None:
    with pytest.raises(Refused) as e:
        apply(fact, merchant=merchant)
    assert e.value.code == code


def test_released_coupon_is_usable_and_budget_to_the_cent() -> None:
    (a,) = apply(facts(status=p.CouponStatus.RELEASED, spent_minor=9_700))
    assert a.discount_minor == 300


def test_two_coupons_of_one_campaign_refused() -> None:
    with pytest.raises(Refused) as e:
        apply(facts(), facts(coupon_id="c2"))
    assert e.value.code == Refusal.COUPON_NOT_STACKABLE


@pytest.mark.parametrize(
    "bad",
    [
        {"kind": "percent"},  # no percent_bps
        {"funded_by": "shared"},  # no share
        {"platform_share_bps": 5000},  # share without shared funding
        {"valid_to": NOW - timedelta(days=2)},
        {"threshold_minor": 100},  # threshold below the amount
        {"budget_minor": 0},
    ],
)
def test_inconsistent_terms_refused(bad: dict[str, Any]) -> None:
    with pytest.raises(ValidationError):
        terms(**bad)


amounts = st.lists(st.integers(min_value=1, max_value=1_000_000), min_size=1, max_size=12)


@given(amounts, st.data())
def test_allocation_exact_and_never_negative(weights: list[int], data: st.DataObject) -> None:
    d = data.draw(st.integers(min_value=0, max_value=sum(weights)))
    parts = p.allocate(d, weights)
    assert sum(parts) == d
    assert all(0 <= x <= w for x, w in zip(parts, weights, strict=True))
    assert parts == p.allocate(d, weights)  # deterministic


@given(
    amounts,
    st.lists(
        st.tuples(st.sampled_from(["direct", "percent"]), st.integers(1, 50_000), st.integers(0, 10_000)),
        min_size=1,
        max_size=3,
    ),
    st.data(),
)
def test_coupons_and_refunds_add_up(prices: list[int], specs: list[tuple[str, int, int]], data: st.DataObject) -> None:
    """Customer paid + platform subsidy = merchant gross + merchant-funded part = goods; refunds reverse all."""
    lines = [p.Line(f"s{i}", "food", x) for i, x in enumerate(prices)]
    cs = []
    for i, (kind, amount, share) in enumerate(specs):
        t = terms(
            kind=kind,
            threshold_minor=0,
            amount_minor=amount if kind == "direct" else None,
            percent_bps=min(amount, 10_000) if kind == "percent" else None,
            funded_by="shared",
            platform_share_bps=share,
            budget_minor=10**9,
        )
        cs.append(facts(t, coupon_id=f"c{i}", campaign_id=f"k{i}"))
    applied = apply(*cs, lines=lines)
    disc = p.per_line(applied, len(lines))
    sub = p.per_line(applied, len(lines), subsidy=True)
    paid = [x - d for x, d in zip(prices, disc, strict=True)]
    assert all(x >= 0 for x in paid) and all(0 <= s <= d for s, d in zip(sub, disc, strict=True))
    merchant_funded = sum(disc) - sum(sub)
    gross = sum(prices) - merchant_funded
    assert sum(paid) + sum(sub) == gross
    # refund the whole order in any mix of item refunds (some units of a line, with that line's share of
    # the subsidy) and amount refunds: the subsidy comes back exactly, never more, never below zero
    total_paid, total_sub = sum(paid), sum(sub)
    assume(total_paid > 0)  # an order with nothing to pay is refused at placement
    refunded, reversed_ = 0, 0
    for i, line_paid in enumerate(paid):
        if line_paid == 0 or not data.draw(st.booleans()):
            continue
        refunded += line_paid
        back = p.subsidy_reversal(total_sub, reversed_, total_paid, refunded, sub[i])
        assert 0 <= back <= total_sub - reversed_
        reversed_ += back
    left = total_paid - refunded
    cuts = sorted(data.draw(st.lists(st.integers(0, left), max_size=4)))
    for piece in [b - a for a, b in zip([0, *cuts], [*cuts, left], strict=True)]:
        refunded += piece
        back = p.subsidy_reversal(total_sub, reversed_, total_paid, refunded)
        assert 0 <= back <= total_sub - reversed_
        reversed_ += back
    assert refunded == total_paid and reversed_ == total_sub


@given(st.integers(1, 10**7), st.data())
def test_item_refund_never_more_than_paid_and_all_units_exact(total: int, data: st.DataObject) -> None:
    discount = data.draw(st.integers(0, total))
    quantity = data.draw(st.integers(1, 50))
    units = data.draw(st.integers(1, quantity))
    paid_for_item = total - discount
    part = p.item_refund_minor(total, discount, quantity, units)
    assert 0 <= part <= paid_for_item
    assert p.item_refund_minor(total, discount, quantity, quantity) == paid_for_item
