import pytest
from hypothesis import given
from hypothesis import strategies as st

from domain.money import apply_bps, split_exact


@pytest.mark.parametrize(
    ("amount", "bps", "expected"),
    [(1000, 500, 50), (10, 500, 1), (9, 500, 0), (1, 5000, 1), (3, 5000, 2), (199, 250, 5), (0, 9999, 0)],
)
def test_apply_bps_rounds_half_up_to_the_minor_unit(amount, bps, expected):
    # 10 × 5% = 0.5 → 1; 9 × 5% = 0.45 → 0; 3 × 50% = 1.5 → 2; 199 × 2.5% = 4.975 → 5
    assert apply_bps(amount, bps) == expected


def test_apply_bps_refuses_negative_input():
    with pytest.raises(ValueError):
        apply_bps(-1, 100)


@given(st.integers(0, 10**12), st.lists(st.integers(0, 10**6), min_size=1, max_size=12).filter(any))
def test_a_split_always_adds_up_exactly(total, weights):
    parts = split_exact(total, weights)
    assert sum(parts) == total
    assert all(p >= 0 for p in parts)
    assert all(p == 0 for p, w in zip(parts, weights, strict=True) if w == 0)


def test_split_is_deterministic_and_fair():
    assert split_exact(100, [1, 1, 1]) == [34, 33, 33]
    assert split_exact(5, [1, 0, 1]) == [3, 0, 2]
