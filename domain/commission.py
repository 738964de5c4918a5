"""Commission rules, their routing at order creation, and the settlement split of an order (pure).

A rule applies to a scope: a product (sku), a merchant, a category, a campaign, or everything
(default). The most specific valid rule wins: product, then campaign, then merchant, then category,
then default; within a scope the higher priority, then the later start. The chosen rule is
snapshotted on the order with the facts it was chosen on, so later rule changes never re-price it.
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum

from pydantic import AwareDatetime, BaseModel, Field, model_validator

from domain.money import apply_bps
from domain.orders import CommissionSnapshot


class Scope(StrEnum):
    PRODUCT = "product"
    CAMPAIGN = "campaign"
    MERCHANT = "merchant"
    CATEGORY = "category"
    DEFAULT = "default"


SPECIFICITY = {Scope.PRODUCT: 0, Scope.CAMPAIGN: 1, Scope.MERCHANT: 2, Scope.CATEGORY: 3, Scope.DEFAULT: 4}


class RuleSpec(BaseModel):
    scope: Scope
    scope_value: str | None = Field(default=None, max_length=64)
    rate_bps: int = Field(ge=0, le=10_000)
    floor_minor: int | None = Field(default=None, ge=0, le=10**12)
    cap_minor: int | None = Field(default=None, ge=0, le=10**12)
    priority: int = Field(default=0, ge=0, le=1000)
    # Aware only: a naive time compared with the aware ones in the database is a TypeError (a 500).
    valid_from: AwareDatetime
    valid_to: AwareDatetime | None = None

    @model_validator(mode="after")
    def _coherent(self) -> RuleSpec:
        if (self.scope is Scope.DEFAULT) != (self.scope_value is None):
            raise ValueError("a default rule has no scope_value; every other scope needs one")
        if self.floor_minor is not None and self.cap_minor is not None and self.floor_minor > self.cap_minor:
            raise ValueError("floor_minor is above cap_minor")
        if self.valid_to is not None and self.valid_to <= self.valid_from:
            raise ValueError("valid_to must be after valid_from")
        return self


class Rule(RuleSpec):
    rule_id: str
    active: bool = True

    def valid_at(self, at: datetime) -> bool:
        return self.active and self.valid_from <= at and (self.valid_to is None or at < self.valid_to)


class OrderFacts(BaseModel):
    merchant_id: str
    sku_ids: list[str]
    category_ids: list[str]
    campaign_id: str | None = None


def _matches(rule: Rule, facts: OrderFacts) -> bool:
    match rule.scope:
        case Scope.PRODUCT:
            return rule.scope_value in facts.sku_ids
        case Scope.CAMPAIGN:
            return rule.scope_value == facts.campaign_id
        case Scope.MERCHANT:
            return rule.scope_value == facts.merchant_id
        case Scope.CATEGORY:
            return rule.scope_value in facts.category_ids
    return True


def route(rules: list[Rule], facts: OrderFacts, at: datetime) -> Rule | None:
    candidates = [r for r in rules if r.valid_at(at) and _matches(r, facts)]
    if not candidates:
        return None
    return min(candidates, key=lambda r: (SPECIFICITY[r.scope], -r.priority, -r.valid_from.timestamp(), r.rule_id))


def price(
    rules: list[Rule], facts: OrderFacts, at: datetime, *, default_bps: int, promoter_bps: int, has_promoter: bool
) -> CommissionSnapshot:
    """The commission an order is created with: the most specific valid rule (or the platform default
    when none applies) and the promoter's rate when a promoter brought the order, snapshotted with the
    facts the rule was chosen on."""
    rule = route(rules, facts, at)
    promoter = promoter_bps if has_promoter else 0
    chosen_on: dict[str, str | list[str]] = {k: v for k, v in facts.model_dump().items() if v}
    if rule is None:
        return CommissionSnapshot(
            rule_id="platform-default", rate_bps=default_bps, promoter_bps=promoter, chosen_on=chosen_on
        )
    return CommissionSnapshot(
        rule_id=rule.rule_id,
        rate_bps=rule.rate_bps,
        scope=rule.scope.value,
        floor_minor=rule.floor_minor,
        cap_minor=rule.cap_minor,
        promoter_bps=promoter,
        chosen_on=chosen_on,
    )


class Split(BaseModel):
    """How the money an order leaves in escrow is released: it always adds up to `base_minor`."""

    base_minor: int  # gross − refunds
    commission_minor: int
    promoter_minor: int
    merchant_net_minor: int


def split(
    gross_minor: int,
    refunded_minor: int,
    *,
    rate_bps: int,
    floor_minor: int | None,
    cap_minor: int | None,
    promoter_bps: int,
) -> Split:
    """Commission rounded half-up once per statement line, clamped to the rule's floor and cap and never
    above what is left; the promoter's share next; the merchant gets exactly the rest."""
    base = gross_minor - refunded_minor
    if base < 0:
        raise ValueError("refunds exceed the gross amount")
    commission = apply_bps(base, rate_bps)
    if floor_minor is not None:
        commission = max(commission, floor_minor)
    if cap_minor is not None:
        commission = min(commission, cap_minor)
    commission = min(commission, base)
    promoter = min(apply_bps(base, promoter_bps), base - commission)
    return Split(
        base_minor=base,
        commission_minor=commission,
        promoter_minor=promoter,
        merchant_net_minor=base - commission - promoter,
    )


def _half_up(numerator: int, denominator: int) -> int:
    return (2 * numerator + denominator) // (2 * denominator)


def refunded_share(settled: Split, refunded_minor: int) -> Split:
    """Who gives back `refunded_minor` (all refunds of a settled order so far, together), in proportion
    to how its settlement released the money. Always computed on the cumulative amount, never per
    refund: rounding each partial refund on its own can take back more than a party was paid (two
    halves of 451 round to 226 + 226). Commission and commission + promoter are each rounded once;
    the merchant gets the rest, so the parts add up to `refunded_minor` and reach exactly what was
    settled when everything is refunded."""
    if not 0 <= refunded_minor <= settled.base_minor:
        raise ValueError(f"refunded {refunded_minor} is outside 0..{settled.base_minor} that was settled")
    if refunded_minor == settled.base_minor:
        return settled
    commission = _half_up(refunded_minor * settled.commission_minor, settled.base_minor)
    platform = _half_up(refunded_minor * (settled.commission_minor + settled.promoter_minor), settled.base_minor)
    return Split(
        base_minor=refunded_minor,
        commission_minor=commission,
        promoter_minor=platform - commission,
        merchant_net_minor=refunded_minor - platform,
    )


def clawback(settled: Split, refunded_before_minor: int, amount_minor: int) -> Split:
    """What one refund of a settled order takes back from each party: the share of everything refunded
    after it minus the share of what was refunded before it, so any sequence of partial refunds claws
    back exactly the share of their total. A part can be −1 (rounding hands back a unit an earlier
    refund took); the parts always add up to `amount_minor`."""
    before = refunded_share(settled, refunded_before_minor)
    after = refunded_share(settled, refunded_before_minor + amount_minor)
    return Split(
        base_minor=amount_minor,
        commission_minor=after.commission_minor - before.commission_minor,
        promoter_minor=after.promoter_minor - before.promoter_minor,
        merchant_net_minor=after.merchant_net_minor - before.merchant_net_minor,
    )
