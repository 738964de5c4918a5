import random

from domain.payments import poll_delay, route_channels


def test_polls_back_off_by_doubling_up_to_the_cap():
    assert [poll_delay(5, 120, n) for n in range(8)] == [5, 10, 20, 40, 80, 120, 120, 120]
    assert [poll_delay(1, 2, n) for n in range(3)] == [1, 2, 2]
    assert poll_delay(0, 0, 0) == 1  # never a busy loop


def test_routing_puts_an_enabled_preference_first_and_skips_disabled_channels():
    weights = {"wechat": 60, "alipay": 40, "unionpay": 0}
    assert route_channels(weights, "alipay", random.Random(1)) == ["alipay", "wechat"]
    assert route_channels(weights, "unionpay", random.Random(1))[0] in ("wechat", "alipay")
    assert sorted(route_channels(weights, None, random.Random(7))) == ["alipay", "wechat"]
    # the same seed (workflow.random() on replay) gives the same order
    assert route_channels(weights, None, random.Random(3)) == route_channels(weights, None, random.Random(3))
