"""Promotions: campaign terms, a coupon's discount on an order, who funds it, and where it lands (pure).

The server computes every discount (the client never sends a trusted one). A coupon is checked against
its campaign's terms here, one refusal code per reason, so the API route and the order activity that
re-checks it under lock answer the same "no". The discount is allocated across the eligible items by
largest remainder (money.split_exact), so the parts always add up to the cent and no item goes below
zero; the platform-funded part of it (the subsidy) is split the same way, so a partial refund of one
item can reverse exactly that item's share of the subsidy.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum

from pydantic import BaseModel, Field, model_validator

from domain.ids import CodeId
from domain.money import BPS, apply_bps, split_exact
from domain.refusals import Refusal, Refused

MAX_COUPONS_PER_ORDER = 5
MAX_BUDGET_MINOR = 100_000_000_000


class CampaignKind(StrEnum):
    FULL_REDUCTION = "full_reduction"  # 满减: amount off once the eligible goods reach a threshold
    DIRECT = "direct"  # 直减: amount off, no threshold
    PERCENT = "percent"  # 折扣: a share off, optionally capped


class FundedBy(StrEnum):
    PLATFORM = "platform"
    MERCHANT = "merchant"
    SHARED = "shared"


class CouponStatus(StrEnum):
    ISSUED = "ISSUED"  # held by the customer, usable
    RESERVED = "RESERVED"  # named by an unpaid order: budget held
    CONSUMED = "CONSUMED"  # the order's payment was captured
    RELEASED = "RELEASED"  # the order was cancelled or expired unpaid: usable again if still valid


class CampaignTerms(BaseModel):
    name: str = Field(min_length=1, max_length=200)
    kind: CampaignKind
    threshold_minor: int = Field(default=0, ge=0, le=MAX_BUDGET_MINOR)
    amount_minor: int | None = Field(default=None, gt=0, le=MAX_BUDGET_MINOR)
    percent_bps: int | None = Field(default=None, gt=0, le=BPS)
    cap_minor: int | None = Field(default=None, gt=0, le=MAX_BUDGET_MINOR)
    funded_by: FundedBy
    platform_share_bps: int | None = Field(default=None, ge=0, le=BPS)
    budget_minor: int = Field(gt=0, le=MAX_BUDGET_MINOR)
    valid_from: datetime
    valid_to: datetime
    merchant_ids: list[CodeId] = Field(default_factory=list, max_length=1000)
    category_ids: list[CodeId] = Field(default_factory=list, max_length=1000)
    per_customer_limit: int = Field(default=1, ge=1, le=1000)

    @model_validator(mode="after")
    def _consistent(self) -> CampaignTerms:
        if self.valid_from.tzinfo is None or self.valid_to.tzinfo is None:
            raise ValueError("valid_from and valid_to need a time zone")
        if self.valid_to <= self.valid_from:
            raise ValueError("valid_to must be after valid_from")
        if self.kind is CampaignKind.PERCENT:
            if self.percent_bps is None or self.amount_minor is not None:
                raise ValueError("a percent campaign takes percent_bps (and no amount_minor)")
        else:
            if self.amount_minor is None or self.percent_bps is not None or self.cap_minor is not None:
                raise ValueError(f"a {self.kind} campaign takes amount_minor (and no percent_bps or cap_minor)")
        if self.kind is CampaignKind.FULL_REDUCTION and self.threshold_minor < (self.amount_minor or 0):
            raise ValueError("a full_reduction threshold must be at least its amount")
        if (self.funded_by is FundedBy.SHARED) != (self.platform_share_bps is not None):
            raise ValueError("platform_share_bps is given exactly when funded_by is shared")
        return self

    @property
    def share_bps(self) -> int:
        """The platform's share of every discount of this campaign."""
        if self.funded_by is FundedBy.PLATFORM:
            return BPS
        if self.funded_by is FundedBy.MERCHANT:
            return 0
        return self.platform_share_bps or 0


@dataclass(frozen=True)
class Line:
    """An order item as promotions see it."""

    sku_id: str
    category_id: str
    total_minor: int


@dataclass(frozen=True)
class CouponFacts:
    """What the rule needs to know about one named coupon, loaded by the caller."""

    coupon_id: str
    campaign_id: str
    customer_id: str
    status: CouponStatus
    terms: CampaignTerms
    spent_minor: int  # the campaign's budget already reserved or consumed
    used_by_customer: int  # this customer's other reserved or consumed coupons of the campaign


@dataclass(frozen=True)
class Applied:
    coupon_id: str
    campaign_id: str
    discount_minor: int
    subsidy_minor: int  # the platform-funded part
    per_item: list[int]  # discount per order line, in order
    subsidy_per_item: list[int]


def eligible(terms: CampaignTerms, merchant_id: str, lines: list[Line]) -> list[bool]:
    """Which lines the campaign covers: an empty scope list means every merchant / category."""
    if terms.merchant_ids and merchant_id not in terms.merchant_ids:
        return [False] * len(lines)
    return [not terms.category_ids or ln.category_id in terms.category_ids for ln in lines]


def discount_on(terms: CampaignTerms, eligible_minor: int) -> int:
    """The discount of one coupon on goods worth eligible_minor (never more than those goods)."""
    if terms.kind is CampaignKind.PERCENT:
        off = apply_bps(eligible_minor, terms.percent_bps or 0)
        if terms.cap_minor is not None:
            off = min(off, terms.cap_minor)
    else:
        off = terms.amount_minor or 0
    return min(off, eligible_minor)


def allocate(discount_minor: int, weights: list[int]) -> list[int]:
    """The discount over the lines by largest remainder: sums exactly, no line above its weight."""
    if discount_minor > sum(weights):
        raise ValueError("a discount cannot exceed what it is taken from")
    if discount_minor == 0:
        return [0] * len(weights)
    return split_exact(discount_minor, weights)


def subsidy_of(discount_minor: int, terms: CampaignTerms) -> int:
    """The platform-funded part of a discount (shared: the platform's share, rounded half-up)."""
    return apply_bps(discount_minor, terms.share_bps)


def check(facts: CouponFacts, *, customer_id: str, merchant_id: str, lines: list[Line], now: datetime) -> None:
    """Refuse a coupon that cannot apply to this order; the budget is checked with the discount."""
    t = facts.terms
    if facts.customer_id != customer_id:
        raise Refused(Refusal.COUPON_NOT_YOURS, f"coupon {facts.coupon_id} was issued to another customer")
    if facts.status not in (CouponStatus.ISSUED, CouponStatus.RELEASED):
        raise Refused(Refusal.COUPON_ALREADY_USED, f"coupon {facts.coupon_id} is {facts.status.lower()}")
    if not t.valid_from <= now < t.valid_to:
        raise Refused(
            Refusal.CAMPAIGN_NOT_ACTIVE,
            f"campaign {facts.campaign_id} runs from {t.valid_from.isoformat()} to {t.valid_to.isoformat()}",
        )
    scope = eligible(t, merchant_id, lines)
    if not any(scope):
        detail = f"no item of this order is covered by campaign {facts.campaign_id}"
        raise Refused(Refusal.COUPON_NOT_APPLICABLE, detail)
    goods = sum(ln.total_minor for ln, ok in zip(lines, scope, strict=True) if ok)
    if goods < t.threshold_minor:
        raise Refused(
            Refusal.BELOW_THRESHOLD,
            f"campaign {facts.campaign_id} needs {t.threshold_minor} of eligible goods; this order has {goods}",
        )
    if facts.used_by_customer >= t.per_customer_limit:
        raise Refused(
            Refusal.CUSTOMER_LIMIT_REACHED,
            f"customer {customer_id} already used {facts.used_by_customer} coupon(s) of campaign {facts.campaign_id}",
        )


def apply(
    coupons: list[CouponFacts], *, customer_id: str, merchant_id: str, lines: list[Line], now: datetime
) -> list[Applied]:
    """Every coupon checked and applied in the order named, each on what earlier ones left of its lines."""
    if len(coupons) > MAX_COUPONS_PER_ORDER:
        raise Refused(Refusal.INVALID_REQUEST, f"at most {MAX_COUPONS_PER_ORDER} coupons per order")
    if len({c.coupon_id for c in coupons}) != len(coupons):
        raise Refused(Refusal.INVALID_REQUEST, "a coupon may be named once per order")
    if len({c.campaign_id for c in coupons}) != len(coupons):
        raise Refused(Refusal.COUPON_NOT_STACKABLE, "one coupon per campaign and order")
    left = [ln.total_minor for ln in lines]
    out: list[Applied] = []
    for c in coupons:
        check(c, customer_id=customer_id, merchant_id=merchant_id, lines=lines, now=now)
        scope = eligible(c.terms, merchant_id, lines)
        weights = [w if ok else 0 for w, ok in zip(left, scope, strict=True)]
        off = discount_on(c.terms, sum(weights))
        if c.spent_minor + off > c.terms.budget_minor:
            raise Refused(Refusal.BUDGET_EXHAUSTED, f"campaign {c.campaign_id} has no budget left for {off}")
        per_item = allocate(off, weights) if off else [0] * len(lines)
        sub = subsidy_of(off, c.terms)
        sub_items = allocate(sub, per_item) if sub else [0] * len(lines)
        left = [a - b for a, b in zip(left, per_item, strict=True)]
        out.append(Applied(c.coupon_id, c.campaign_id, off, sub, per_item, sub_items))
    return out


def per_line(applied: list[Applied], n: int, *, subsidy: bool = False) -> list[int]:
    """The total discount (or subsidy) of each of n lines over every applied coupon."""
    return [sum((a.subsidy_per_item if subsidy else a.per_item)[i] for a in applied) for i in range(n)]


def item_refund_minor(line_total_minor: int, discount_minor: int, quantity: int, units: int) -> int:
    """What the customer paid for `units` of an order line: its price less its allocated discount, pro
    rata, rounded down so a refund never returns more than was paid for those units (all units: exact)."""
    if not 0 < units <= quantity or not 0 <= discount_minor <= line_total_minor:
        raise ValueError("units must be within the line's quantity and the discount within its total")
    return (line_total_minor - discount_minor) * units // quantity


def subsidy_reversal(
    subsidy_minor: int, reversed_before: int, paid_minor: int, refunded_after: int, item_share: int | None = None
) -> int:
    """The share of an order's subsidy a refund takes back out of escrow, so that it always adds up.

    An item refund reverses that item's share (item_share); an amount refund the pro-rata share, counted
    cumulatively (after refunds totalling R of paid P, floor(S·R/P) is reversed in all, so rounding never
    accumulates); the refund that completes the order's refunds reverses whatever is left. Never more
    than what is left, never negative: any mix of refunds reverses exactly the whole subsidy.
    """
    left = subsidy_minor - reversed_before
    if left <= 0 or paid_minor <= 0:
        return 0
    if refunded_after >= paid_minor:
        return left
    if item_share is not None:
        return max(0, min(item_share, left))
    return max(0, min(subsidy_minor * refunded_after // paid_minor - reversed_before, left))
