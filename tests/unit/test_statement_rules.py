"""Statement rules: adjustments keep commission and net non-negative; small statements approve themselves."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from domain.refusals import Refusal, Refused
from domain.statement_rules import auto_approvable, check_adjustment


def test_an_adjustment_up_to_the_whole_commission_or_the_whole_net_is_allowed() -> None:
    check_adjustment(commission_minor=300, net_minor=700, adjustment_minor=300)  # all commission to the merchant
    check_adjustment(commission_minor=300, net_minor=700, adjustment_minor=-700)  # all net to the platform


@pytest.mark.parametrize("adjustment", [301, -701])
def test_one_minor_unit_more_is_refused(adjustment: int) -> None:
    with pytest.raises(Refused) as caught:
        check_adjustment(commission_minor=300, net_minor=700, adjustment_minor=adjustment)
    assert caught.value.code is Refusal.ADJUSTMENT_TOO_LARGE


@given(commission=st.integers(0, 10**9), net=st.integers(0, 10**9), adjustment=st.integers(-(10**9), 10**9))
def test_an_allowed_adjustment_moves_money_without_creating_or_losing_any(
    commission: int, net: int, adjustment: int
) -> None:
    try:
        check_adjustment(commission, net, adjustment)
    except Refused:
        assert commission - adjustment < 0 or net + adjustment < 0
        return
    assert commission - adjustment >= 0 and net + adjustment >= 0
    assert (commission - adjustment) + (net + adjustment) == commission + net


def test_the_threshold_itself_approves_itself() -> None:
    assert auto_approvable(10_000, 10_000) and not auto_approvable(10_001, 10_000)
