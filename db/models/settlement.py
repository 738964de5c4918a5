"""Commission rules, settlement cycles, statements (one per merchant and cycle) and their lines."""

from datetime import datetime
from typing import Any

from sqlalchemy import BigInteger, Boolean, DateTime, Index, Integer, String, Text, UniqueConstraint, func
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import Mapped, mapped_column

from db.base import Base, created_at_column


class CommissionRule(Base):
    __tablename__ = "commission_rules"

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    scope: Mapped[str] = mapped_column(String(20), index=True)
    scope_value: Mapped[str | None] = mapped_column(String(64), nullable=True)
    rate_bps: Mapped[int] = mapped_column(Integer)
    floor_minor: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    cap_minor: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    priority: Mapped[int] = mapped_column(Integer, default=0)
    valid_from: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    valid_to: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    created_by: Mapped[str] = mapped_column(String(200))
    created_at: Mapped[datetime] = created_at_column()
    updated_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), server_default=func.now(), onupdate=func.now()
    )


class SettlementCycle(Base):
    __tablename__ = "settlement_cycles"

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    cutoff: Mapped[datetime] = mapped_column(DateTime(timezone=True), unique=True)
    status: Mapped[str] = mapped_column(String(20))  # RUNNING, CLOSED, FAILED
    orders: Mapped[int] = mapped_column(Integer, default=0)
    statements: Mapped[int] = mapped_column(Integer, default=0)
    failure: Mapped[str | None] = mapped_column(Text, nullable=True)
    triggered_by: Mapped[str] = mapped_column(String(200))
    created_at: Mapped[datetime] = created_at_column()
    closed_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    # Claiming ends when the statements are aggregated: a late page (a timed-out attempt) may not commit.
    aggregated_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)


class SettlementQueued(Base):
    """An order a cycle may claim now: settleable, claimed by no live line and with no refund in flight.
    Narrow, so a cycle's claim reads and deletes a page of it instead of walking an index of the wide
    `orders` table; an order enters it when it becomes settleable, leaves it while a refund of it is in
    flight, and goes back when the refund ends or its line stops being live (its statement rejected, its
    cycle failed): db/settlement_sql.py, _QUEUE."""

    __tablename__ = "settlement_queue"
    __table_args__ = (Index("ix_settlement_queue_at", "settleable_at", "order_no"),)

    order_no: Mapped[str] = mapped_column(String(40), primary_key=True)
    settleable_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class SettlementStatement(Base):
    __tablename__ = "settlement_statements"
    __table_args__ = (UniqueConstraint("cycle_id", "merchant_id", name="uq_settlement_statements_cycle_merchant"),)

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    cycle_id: Mapped[str] = mapped_column(String(40), index=True)
    merchant_id: Mapped[str] = mapped_column(String(64), index=True)
    currency: Mapped[str] = mapped_column(String(3))
    status: Mapped[str] = mapped_column(String(20), index=True)  # PENDING_APPROVAL, APPROVED, REJECTED, FAILED
    order_count: Mapped[int] = mapped_column(Integer)
    gross_minor: Mapped[int] = mapped_column(BigInteger)
    refunded_minor: Mapped[int] = mapped_column(BigInteger)
    commission_minor: Mapped[int] = mapped_column(BigInteger)
    promoter_minor: Mapped[int] = mapped_column(BigInteger)
    net_minor: Mapped[int] = mapped_column(BigInteger)
    # A finance adjustment moves money between the platform's commission and the merchant's net.
    adjustment_minor: Mapped[int] = mapped_column(BigInteger, default=0)
    adjustment_reason: Mapped[str | None] = mapped_column(Text, nullable=True)
    adjusted_by_key_id: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    adjusted_by: Mapped[str | None] = mapped_column(String(200), nullable=True)
    approved_by: Mapped[str | None] = mapped_column(String(200), nullable=True)
    rejected_reason: Mapped[str | None] = mapped_column(Text, nullable=True)
    failure: Mapped[str | None] = mapped_column(Text, nullable=True)  # why its posting could not be built
    ledger_entry_id: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    created_at: Mapped[datetime] = created_at_column()
    decided_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)


class SettlementLine(Base):
    __tablename__ = "settlement_lines"
    __table_args__ = (
        UniqueConstraint("cycle_id", "order_no", name="uq_settlement_lines_cycle_order"),
        Index("ix_settlement_lines_cycle_merchant", "cycle_id", "merchant_id"),
    )

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    cycle_id: Mapped[str] = mapped_column(String(40))
    merchant_id: Mapped[str] = mapped_column(String(64))
    order_no: Mapped[str] = mapped_column(String(40), index=True)
    # Its order's: statements are per merchant and currency, and are aggregated from the lines alone.
    currency: Mapped[str] = mapped_column(String(3))
    promoter_id: Mapped[str | None] = mapped_column(String(64), nullable=True)
    gross_minor: Mapped[int] = mapped_column(BigInteger)
    refunded_minor: Mapped[int] = mapped_column(BigInteger)
    subsidy_minor: Mapped[int] = mapped_column(BigInteger, server_default="0")  # part of gross
    commission_minor: Mapped[int] = mapped_column(BigInteger)
    promoter_minor: Mapped[int] = mapped_column(BigInteger)
    net_minor: Mapped[int] = mapped_column(BigInteger)
    rule_id: Mapped[str] = mapped_column(String(64))
    rule: Mapped[dict[str, Any]] = mapped_column(JSONB)
