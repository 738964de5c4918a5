"""What GET /v1/orders/{order_no} answers."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field


class OrderItemView(BaseModel):
    sku_id: str
    name: str
    category_id: str
    unit_price_minor: int
    quantity: int
    line_total_minor: int
    discount_minor: int = Field(description="this line's share of the order's coupon discounts (largest remainder)")
    subsidy_minor: int = Field(description="the platform-funded part of that discount")


class OrderCouponView(BaseModel):
    coupon_id: str
    campaign_id: str
    status: str = Field(description="RESERVED, CONSUMED or RELEASED")
    discount_minor: int
    subsidy_minor: int


class PaymentAttemptView(BaseModel):
    seq: int
    channel: str
    status: str
    pay_url: str | None
    error: str | None


class PaymentView(BaseModel):
    payment_no: str
    status: str = Field(description="PENDING, SUCCEEDED, CLOSED or FAILED")
    amount_minor: int
    channel: str | None
    paid_at: datetime | None
    paid_after_cancel: bool
    attempts: list[PaymentAttemptView]


class OrderRefund(BaseModel):
    refund_no: str
    status: str
    amount_minor: int
    channel: str
    origin: str


class OrderEventView(BaseModel):
    model_config = ConfigDict(populate_by_name=True)

    at: datetime
    event: str
    from_: str | None = Field(alias="from", description="status before the event")
    to: str | None = Field(description="status after the event")
    cause: str
    details: dict[str, Any]


class OrderView(BaseModel):
    order_no: str
    status: str = Field(description="AWAITING_PAYMENT, AWAITING_MERCHANT, DISPATCHING, IN_SERVICE, DELIVERED, ...")
    customer_id: str
    merchant_id: str
    currency: str
    goods_minor: int
    delivery_fee_minor: int
    discount_minor: int
    subsidy_minor: int = Field(description="the platform-funded part of the discount, paid into escrow at capture")
    coupons: list[OrderCouponView]
    payable_minor: int
    paid_minor: int
    refunded_minor: int
    refund_required_minor: int
    settleable: bool
    settled: bool
    provider_id: str | None
    cancel_reason: str | None
    promoter_id: str | None
    commission: dict[str, Any] = Field(description="the commission rule snapshotted when the order was placed")
    created_at: datetime
    items: list[OrderItemView]
    payments: list[PaymentView]
    refunds: list[OrderRefund]
    timeline: list[OrderEventView]
