"""Orders: statuses, the transitions between them, and the contracts of the order flow (pure)."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum

from pydantic import BaseModel, Field, model_validator

from domain.ids import CodeId, CurrencyCode
from domain.money import CURRENCIES
from domain.refunds import RefundTerms

MAX_UNIT_PRICE_MINOR = 100_000_000  # 1,000,000.00 per unit
MAX_QUANTITY = 10_000
MAX_ITEMS = 100
MAX_ORDER_TOTAL_MINOR = 1_000_000_000  # 10,000,000.00: above this an order is a mistake or an attack


class OrderStatus(StrEnum):
    AWAITING_PAYMENT = "AWAITING_PAYMENT"
    AWAITING_MERCHANT = "AWAITING_MERCHANT"
    DISPATCHING = "DISPATCHING"
    IN_SERVICE = "IN_SERVICE"
    DELIVERED = "DELIVERED"
    COMPLETED = "COMPLETED"
    CANCELLED = "CANCELLED"


TRANSITIONS: dict[OrderStatus, frozenset[OrderStatus]] = {
    OrderStatus.AWAITING_PAYMENT: frozenset({OrderStatus.AWAITING_MERCHANT, OrderStatus.CANCELLED}),
    OrderStatus.AWAITING_MERCHANT: frozenset({OrderStatus.DISPATCHING, OrderStatus.CANCELLED}),
    OrderStatus.DISPATCHING: frozenset({OrderStatus.IN_SERVICE, OrderStatus.CANCELLED}),
    OrderStatus.IN_SERVICE: frozenset({OrderStatus.DELIVERED}),
    OrderStatus.DELIVERED: frozenset({OrderStatus.COMPLETED}),
    OrderStatus.COMPLETED: frozenset(),
    OrderStatus.CANCELLED: frozenset(),
}


def frees_provider(status: OrderStatus) -> bool:
    """A provider holds an order from the offer until delivery; a delivered or cancelled order lets them go."""
    return status in (OrderStatus.DELIVERED, OrderStatus.CANCELLED)


class ReservationStatus(StrEnum):
    RESERVED = "RESERVED"  # held for an order until it is paid for or cancelled
    RELEASED = "RELEASED"  # back in stock: the order was cancelled


def can_move(current: OrderStatus, target: OrderStatus) -> bool:
    return target in TRANSITIONS[current]


class FulfilmentEvent(StrEnum):
    PROVIDER_ACCEPTED = "provider_accepted"
    PROVIDER_REJECTED = "provider_rejected"
    ARRIVED = "arrived"
    DELIVERED = "delivered"


# ---- API contract ----------------------------------------------------------------------------
class OrderItemIn(BaseModel):
    sku_id: CodeId
    name: str = Field(min_length=1, max_length=200)
    category_id: CodeId
    unit_price_minor: int = Field(gt=0, le=MAX_UNIT_PRICE_MINOR)
    quantity: int = Field(gt=0, le=MAX_QUANTITY)

    @property
    def line_total_minor(self) -> int:
        return self.unit_price_minor * self.quantity


class CreateOrderRequest(BaseModel):
    # Every id below may reach an account code or a rule scope: one pattern (domain/ids.py).
    customer_id: CodeId
    merchant_id: CodeId
    items: list[OrderItemIn] = Field(min_length=1, max_length=MAX_ITEMS)
    delivery_fee_minor: int = Field(default=0, ge=0, le=MAX_UNIT_PRICE_MINOR)
    # Set by the server from coupon_ids (domain/promotions.py); a client that sends one is refused.
    discount_minor: int = Field(default=0, ge=0, le=MAX_ORDER_TOTAL_MINOR)
    coupon_ids: list[CodeId] = Field(default_factory=list, max_length=5)
    currency: CurrencyCode = "CNY"
    channel: CodeId | None = None
    promoter_id: CodeId | None = None
    campaign_id: CodeId | None = None

    @model_validator(mode="after")
    def _amounts(self) -> CreateOrderRequest:
        if self.currency not in CURRENCIES:
            raise ValueError(f"currency {self.currency!r} is not supported")
        if len({i.sku_id for i in self.items}) != len(self.items):
            raise ValueError("each sku_id may appear once; put the quantity on one line")
        if self.goods_minor > MAX_ORDER_TOTAL_MINOR:
            raise ValueError(f"order total exceeds the maximum of {MAX_ORDER_TOTAL_MINOR} minor units")
        if self.discount_minor > self.goods_minor:
            raise ValueError(f"discount {self.discount_minor} is larger than the goods {self.goods_minor}")
        if self.payable_minor <= 0:
            raise ValueError("nothing to pay: the payable amount must be positive")
        return self

    @property
    def goods_minor(self) -> int:
        return sum(i.line_total_minor for i in self.items)

    @property
    def payable_minor(self) -> int:
        return self.goods_minor + self.delivery_fee_minor - self.discount_minor


class CommissionSnapshot(BaseModel):
    """The rule that applied at order creation, with the facts it was chosen on (settled from this)."""

    rule_id: str
    rate_bps: int
    scope: str = "default"
    floor_minor: int | None = None
    cap_minor: int | None = None
    promoter_bps: int = 0
    chosen_on: dict[str, str | list[str]] = Field(default_factory=dict)


# ---- workflow contracts ----------------------------------------------------------------------
class OrderTerms(BaseModel):
    """Durations copied from settings at start: a running order keeps the terms it started with."""

    payment_timeout_seconds: int
    payment_poll_initial_seconds: int
    payment_poll_max_seconds: int
    merchant_accept_timeout_seconds: int
    dispatch_accept_timeout_seconds: int
    dispatch_max_attempts: int
    auto_confirm_seconds: int
    after_sale_window_seconds: int
    channel_weights: dict[str, int]
    notify_url: str
    refund: RefundTerms


class OrderInput(BaseModel):
    order_no: str
    payment_no: str
    request: CreateOrderRequest
    commission: CommissionSnapshot
    terms: OrderTerms


class PaymentParams(BaseModel):
    payment_no: str
    channel: str
    pay_url: str
    expires_at: datetime


class OrderCreated(BaseModel):
    """What POST /v1/orders answers, produced by the order flow itself (update-with-start)."""

    order_no: str
    status: OrderStatus
    payable_minor: int
    payment: PaymentParams


class OrderResult(BaseModel):
    order_no: str
    status: OrderStatus
    cancel_reason: str | None = None
    refund_required_minor: int = 0
    refund_no: str | None = None
    settleable: bool = False


class CancelRequest(BaseModel):
    reason: str = Field(min_length=1, max_length=500)


class FulfilmentRequest(BaseModel):
    event: FulfilmentEvent
    provider_id: str = Field(min_length=1, max_length=64)


class TransitionResult(BaseModel):
    order_no: str
    status: OrderStatus
    provider_id: str | None = None
    refund_no: str | None = None


# ---- activity contracts ----------------------------------------------------------------------
class Transition(BaseModel):
    """Move an order to `to` and record `event` on its timeline (idempotent on the event name)."""

    order_no: str
    to: OrderStatus | None = None  # None: a timeline event without a status change
    event: str
    cause: str
    details: dict[str, str | int] = Field(default_factory=dict)
    paid_minor: int | None = None
    cancel_reason: str | None = None
    refund_required_minor: int | None = None


class DispatchRequest(BaseModel):
    order_no: str
    attempt: int
    exclude: list[str] = Field(default_factory=list)
