"""Merchants (as far as orders need them), stock, orders and their timeline."""

from datetime import datetime
from typing import Any

from sqlalchemy import (
    BigInteger,
    Boolean,
    CheckConstraint,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
    func,
)
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import Mapped, mapped_column

from db.base import Base, created_at_column


class Merchant(Base):
    __tablename__ = "merchants"

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    category: Mapped[str] = mapped_column(String(64))
    currency: Mapped[str] = mapped_column(String(3), default="CNY")
    status: Mapped[str] = mapped_column(String(30), index=True)
    created_at: Mapped[datetime] = created_at_column()
    updated_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), server_default=func.now(), onupdate=func.now()
    )


class SkuStock(Base):
    __tablename__ = "sku_stock"
    __table_args__ = (CheckConstraint("available >= 0", name="non_negative"),)

    sku_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    merchant_id: Mapped[str] = mapped_column(ForeignKey("merchants.id"), index=True)
    available: Mapped[int] = mapped_column(Integer)


class StockReservation(Base):
    __tablename__ = "stock_reservations"
    __table_args__ = (UniqueConstraint("order_no", "sku_id", name="uq_stock_reservations_order_sku"),)

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    order_no: Mapped[str] = mapped_column(String(40), index=True)
    sku_id: Mapped[str] = mapped_column(ForeignKey("sku_stock.sku_id"))
    quantity: Mapped[int] = mapped_column(Integer)
    status: Mapped[str] = mapped_column(String(20))  # RESERVED, RELEASED
    created_at: Mapped[datetime] = created_at_column()


class Order(Base):
    __tablename__ = "orders"
    __table_args__ = (
        Index("ix_orders_created_at", "created_at"),  # the console's orders-per-day chart
    )

    order_no: Mapped[str] = mapped_column(String(40), primary_key=True)
    customer_id: Mapped[str] = mapped_column(String(64), index=True)
    merchant_id: Mapped[str] = mapped_column(ForeignKey("merchants.id"), index=True)
    currency: Mapped[str] = mapped_column(String(3))
    goods_minor: Mapped[int] = mapped_column(BigInteger)
    delivery_fee_minor: Mapped[int] = mapped_column(BigInteger)
    discount_minor: Mapped[int] = mapped_column(BigInteger)
    payable_minor: Mapped[int] = mapped_column(BigInteger)
    paid_minor: Mapped[int] = mapped_column(BigInteger, default=0)
    refunded_minor: Mapped[int] = mapped_column(BigInteger, default=0)
    # The platform-funded part of the discount (moved into escrow at capture) and what refunds reversed.
    subsidy_minor: Mapped[int] = mapped_column(BigInteger, server_default="0")
    subsidy_reversed_minor: Mapped[int] = mapped_column(BigInteger, server_default="0")
    status: Mapped[str] = mapped_column(String(30), index=True)
    payment_no: Mapped[str] = mapped_column(String(40))
    preferred_channel: Mapped[str | None] = mapped_column(String(20), nullable=True)
    provider_id: Mapped[str | None] = mapped_column(ForeignKey("service_providers.id"), nullable=True)
    dispatch_attempts: Mapped[int] = mapped_column(Integer, default=0)
    cancel_reason: Mapped[str | None] = mapped_column(Text, nullable=True)
    refund_required_minor: Mapped[int] = mapped_column(BigInteger, default=0)
    # Settleable, the order enters the settlement queue (SettlementQueued) in the same transaction, or when
    # a refund of it in flight ends. Its settlement is not written here: a settlement line claims it, and
    # the line's approved statement settled it (db/settlement_sql.py), so settling a cycle writes no order
    # row.
    settleable: Mapped[bool] = mapped_column(Boolean, default=False)
    settleable_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    campaign_id: Mapped[str | None] = mapped_column(String(64), nullable=True)
    promoter_bps: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    promoter_id: Mapped[str | None] = mapped_column(String(64), nullable=True)
    commission_rule_id: Mapped[str] = mapped_column(String(64))
    commission_bps: Mapped[int] = mapped_column(Integer)
    commission_snapshot: Mapped[dict[str, Any]] = mapped_column(JSONB)
    created_at: Mapped[datetime] = created_at_column()
    updated_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), server_default=func.now(), onupdate=func.now()
    )


class OrderItem(Base):
    __tablename__ = "order_items"

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    order_no: Mapped[str] = mapped_column(ForeignKey("orders.order_no"), index=True)
    sku_id: Mapped[str] = mapped_column(String(64))
    name: Mapped[str] = mapped_column(String(200))
    category_id: Mapped[str] = mapped_column(String(64))
    unit_price_minor: Mapped[int] = mapped_column(BigInteger)
    quantity: Mapped[int] = mapped_column(Integer)
    line_total_minor: Mapped[int] = mapped_column(BigInteger)
    discount_minor: Mapped[int] = mapped_column(BigInteger, server_default="0")
    subsidy_minor: Mapped[int] = mapped_column(BigInteger, server_default="0")


class OrderEvent(Base):
    """The order's timeline: every transition and notable event, with when and why."""

    __tablename__ = "order_timeline"
    # The flow names each event uniquely, so a retried activity cannot write it twice.
    __table_args__ = (UniqueConstraint("order_no", "event", name="uq_order_timeline_order_event"),)

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    order_no: Mapped[str] = mapped_column(ForeignKey("orders.order_no"), index=True)
    event: Mapped[str] = mapped_column(String(60))
    status_from: Mapped[str | None] = mapped_column(String(30), nullable=True)
    status_to: Mapped[str | None] = mapped_column(String(30), nullable=True)
    cause: Mapped[str] = mapped_column(Text)
    details: Mapped[dict[str, Any]] = mapped_column(JSONB, default=dict)
    at: Mapped[datetime] = created_at_column()
