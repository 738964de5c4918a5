"""The order status chart: what each status may become, written out as facts, not read
back from the table the code uses."""

import pytest

from domain.orders import OrderStatus as S
from domain.orders import can_move

ALLOWED = {
    (S.AWAITING_PAYMENT, S.AWAITING_MERCHANT),  # paid
    (S.AWAITING_PAYMENT, S.CANCELLED),  # cancelled or unpaid at the deadline
    (S.AWAITING_MERCHANT, S.DISPATCHING),
    (S.AWAITING_MERCHANT, S.CANCELLED),  # refused or not accepted in time: refunded
    (S.DISPATCHING, S.IN_SERVICE),
    (S.DISPATCHING, S.CANCELLED),  # no provider: refunded
    (S.IN_SERVICE, S.DELIVERED),
    (S.DELIVERED, S.COMPLETED),
}


@pytest.mark.parametrize("current", list(S))
@pytest.mark.parametrize("target", list(S))
def test_only_the_charted_transitions_are_allowed(current, target):
    assert can_move(current, target) is ((current, target) in ALLOWED)


def test_finished_orders_never_move_again():
    for done in (S.COMPLETED, S.CANCELLED):
        assert not any(can_move(done, target) for target in S)
