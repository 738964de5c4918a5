"""Order admission: one rule for the API's early answer and the order flow's locked check."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from domain.admission import MerchantFacts, admit_merchant, admit_order, admit_stock, quantities
from domain.refusals import Refusal, Refused

ACTIVE = MerchantFacts("m-1", "ACTIVE", "CNY")
WEIGHTS = {"wechat": 70, "alipay": 30, "paypal": 0}


def refusal_of(call) -> Refusal | None:  # type: ignore[no-untyped-def]
    try:
        call()
    except Refused as exc:
        return exc.code
    return None


@pytest.mark.parametrize(
    ("merchant", "currency", "channel", "tracked", "code"),
    [
        (None, "CNY", None, {}, Refusal.MERCHANT_NOT_FOUND),
        (MerchantFacts("m-1", "SUSPENDED", "CNY"), "CNY", None, {}, Refusal.MERCHANT_NOT_ACTIVE),
        (MerchantFacts("m-1", "IN_REVIEW", "CNY"), "CNY", None, {}, Refusal.MERCHANT_NOT_ACTIVE),
        (ACTIVE, "USD", None, {}, Refusal.WRONG_CURRENCY),
        (ACTIVE, "CNY", "paypal", {}, Refusal.UNKNOWN_CHANNEL),
        (ACTIVE, "CNY", "stripe", {}, Refusal.UNKNOWN_CHANNEL),
        (ACTIVE, "CNY", "wechat", {"sku-1": 1}, Refusal.OUT_OF_STOCK),
        (ACTIVE, "CNY", None, {"sku-1": 2}, None),
        (ACTIVE, "CNY", "alipay", {}, None),  # untracked SKUs are services with unlimited capacity
    ],
)
def test_each_reason_is_its_own_refusal(merchant, currency, channel, tracked, code) -> None:  # type: ignore[no-untyped-def]
    assert refusal_of(lambda: admit_order("m-1", merchant, currency, channel, WEIGHTS, {"sku-1": 2}, tracked)) == code


def test_the_merchant_is_checked_before_the_money_and_the_stock() -> None:
    # A suspended merchant in the wrong currency with nothing in stock: the caller hears about the merchant.
    merchant = MerchantFacts("m-1", "SUSPENDED", "USD")
    assert refusal_of(lambda: admit_order("m-1", merchant, "CNY", "paypal", WEIGHTS, {"s": 5}, {"s": 0})) == (
        Refusal.MERCHANT_NOT_ACTIVE
    )


def test_refusals_say_why() -> None:
    with pytest.raises(Refused, match="takes CNY, not USD"):
        admit_merchant("m-1", ACTIVE, "USD")
    with pytest.raises(Refused, match=r"not enough stock: sku-1 \(wanted 3, 2 left\)"):
        admit_stock({"sku-1": 3}, {"sku-1": 2})


def test_an_sku_on_two_lines_needs_both_covered() -> None:
    wanted = quantities([("sku-1", 2), ("sku-2", 1), ("sku-1", 2)])
    assert wanted == {"sku-1": 4, "sku-2": 1}
    assert refusal_of(lambda: admit_stock(wanted, {"sku-1": 3})) is Refusal.OUT_OF_STOCK


@given(
    wanted=st.dictionaries(st.sampled_from(["a", "b", "c"]), st.integers(1, 50), min_size=1),
    tracked=st.dictionaries(st.sampled_from(["a", "b", "c", "d"]), st.integers(0, 60)),
)
def test_stock_is_refused_exactly_when_some_tracked_sku_is_short(
    wanted: dict[str, int], tracked: dict[str, int]
) -> None:
    short = any(sku in tracked and tracked[sku] < qty for sku, qty in wanted.items())
    assert (refusal_of(lambda: admit_stock(wanted, tracked)) is Refusal.OUT_OF_STOCK) == short
