from datetime import UTC, datetime, timedelta

from hypothesis import given
from hypothesis import strategies as st

from domain.commission import OrderFacts, Rule, Scope, price, route, split

T0 = datetime(2026, 1, 1, tzinfo=UTC)


def rule(rule_id: str, scope: Scope, value: str | None, rate: int, **kw) -> Rule:  # type: ignore[no-untyped-def]
    return Rule(
        rule_id=rule_id, scope=scope, scope_value=value, rate_bps=rate, valid_from=kw.pop("valid_from", T0), **kw
    )


FACTS = OrderFacts(merchant_id="m1", sku_ids=["sku-a", "sku-b"], category_ids=["food"], campaign_id="double11")
RULES = [
    rule("default", Scope.DEFAULT, None, 500),
    rule("food", Scope.CATEGORY, "food", 400),
    rule("m1", Scope.MERCHANT, "m1", 300),
    rule("d11", Scope.CAMPAIGN, "double11", 200, valid_to=T0 + timedelta(days=2)),
    rule("sku-a", Scope.PRODUCT, "sku-a", 100, valid_from=T0 + timedelta(days=1)),
]


def test_the_most_specific_valid_rule_wins():
    assert route(RULES, FACTS, T0 + timedelta(hours=1)).rule_id == "d11"  # type: ignore[union-attr]
    assert route(RULES, FACTS, T0 + timedelta(days=1, hours=1)).rule_id == "sku-a"  # type: ignore[union-attr]
    later = T0 + timedelta(days=3)
    assert route(RULES, FACTS.model_copy(update={"sku_ids": ["sku-z"]}), later).rule_id == "m1"  # type: ignore[union-attr]
    other = OrderFacts(merchant_id="m2", sku_ids=["x"], category_ids=["food"])
    assert route(RULES, other, later).rule_id == "food"  # type: ignore[union-attr]
    assert route(RULES, other.model_copy(update={"category_ids": ["spa"]}), later).rule_id == "default"  # type: ignore[union-attr]


def test_priority_breaks_ties_and_disabled_or_expired_rules_never_apply():
    rules = [
        rule("low", Scope.MERCHANT, "m1", 300, priority=1),
        rule("high", Scope.MERCHANT, "m1", 250, priority=9),
        rule("off", Scope.PRODUCT, "sku-a", 1, active=False),
        rule("old", Scope.PRODUCT, "sku-b", 1, valid_to=T0 + timedelta(hours=1)),
    ]
    assert route(rules, FACTS, T0 + timedelta(days=1)).rule_id == "high"  # type: ignore[union-attr]
    assert route([], FACTS, T0) is None


def test_floor_and_cap_clamp_the_commission():
    assert split(10_000, 0, rate_bps=100, floor_minor=500, cap_minor=None, promoter_bps=0).commission_minor == 500
    assert split(10_000, 0, rate_bps=5000, floor_minor=None, cap_minor=700, promoter_bps=0).commission_minor == 700
    # a floor never takes more than is left after refunds
    assert split(1000, 900, rate_bps=100, floor_minor=500, cap_minor=None, promoter_bps=0).commission_minor == 100


@given(
    gross=st.integers(0, 10**10),
    refund_pct=st.integers(0, 100),
    rate=st.integers(0, 10_000),
    floor=st.none() | st.integers(0, 10**6),
    cap=st.none() | st.integers(0, 10**7),
    promoter=st.integers(0, 3000),
)
def test_a_split_always_adds_up_exactly_and_is_never_negative(gross, refund_pct, rate, floor, cap, promoter):
    if floor is not None and cap is not None and floor > cap:
        floor, cap = cap, floor
    refunded = gross * refund_pct // 100
    s = split(gross, refunded, rate_bps=rate, floor_minor=floor, cap_minor=cap, promoter_bps=promoter)
    assert s.merchant_net_minor + s.commission_minor + s.promoter_minor == s.base_minor == gross - refunded
    assert min(s.merchant_net_minor, s.commission_minor, s.promoter_minor) >= 0


def test_an_order_is_priced_with_the_platform_default_when_no_rule_applies() -> None:
    snap = price([], FACTS, T0, default_bps=600, promoter_bps=150, has_promoter=False)
    assert (snap.rule_id, snap.rate_bps, snap.promoter_bps) == ("platform-default", 600, 0)
    assert snap.chosen_on["merchant_id"] == "m1" and snap.chosen_on["campaign_id"] == "double11"


def test_the_snapshot_carries_the_chosen_rule_and_the_promoter_rate_only_with_a_promoter() -> None:
    capped = [*RULES, rule("sku-b", Scope.PRODUCT, "sku-b", 50, floor_minor=10, cap_minor=900)]
    snap = price(capped, FACTS, T0 + timedelta(hours=1), default_bps=600, promoter_bps=150, has_promoter=True)
    assert (snap.rule_id, snap.scope, snap.floor_minor, snap.cap_minor) == ("sku-b", "product", 10, 900)
    assert snap.promoter_bps == 150
