"""Captures (money in, per payment and channel) and the refunds returning it."""

from datetime import datetime

from sqlalchemy import BigInteger, Boolean, DateTime, ForeignKey, Integer, String, Text, UniqueConstraint, func
from sqlalchemy.orm import Mapped, mapped_column

from db.base import Base, created_at_column


class Capture(Base):
    """Money a channel took for a payment. Refunds lock this row to check what is still refundable."""

    __tablename__ = "captures"
    __table_args__ = (UniqueConstraint("payment_no", "channel", name="uq_captures_payment_channel"),)

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    order_no: Mapped[str] = mapped_column(String(40), index=True)
    payment_no: Mapped[str] = mapped_column(String(40))
    channel: Mapped[str] = mapped_column(String(20))
    amount_minor: Mapped[int] = mapped_column(BigInteger)
    currency: Mapped[str] = mapped_column(String(3))
    channel_txn_id: Mapped[str | None] = mapped_column(String(100), nullable=True)
    # A second success of the same payment (another channel): not the order's money, returned in full.
    extra: Mapped[bool] = mapped_column(Boolean, default=False)
    ledger_entry_id: Mapped[int] = mapped_column(BigInteger)
    created_at: Mapped[datetime] = created_at_column()


class Refund(Base):
    __tablename__ = "refunds"

    refund_no: Mapped[str] = mapped_column(String(48), primary_key=True)
    order_no: Mapped[str] = mapped_column(String(40), index=True)
    payment_no: Mapped[str] = mapped_column(String(40))
    capture_id: Mapped[int] = mapped_column(ForeignKey("captures.id"), index=True)
    channel: Mapped[str] = mapped_column(String(20))
    merchant_id: Mapped[str] = mapped_column(String(64))
    amount_minor: Mapped[int] = mapped_column(BigInteger)
    # An item refund: that item's share of the promotion subsidy (None: reversed pro rata).
    subsidy_minor: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    currency: Mapped[str] = mapped_column(String(3))
    reason: Mapped[str] = mapped_column(Text)
    origin: Mapped[str] = mapped_column(String(20))
    status: Mapped[str] = mapped_column(String(20), index=True)
    requested_by: Mapped[str] = mapped_column(String(200))
    requested_by_key_id: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    failure_reason: Mapped[str | None] = mapped_column(Text, nullable=True)
    approved_by: Mapped[str | None] = mapped_column(String(200), nullable=True)
    ledger_entry_id: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    # A refund of a settled order: the part of the merchant's share its posting took from available
    # (negative when a rounding unit went back to it); the ledger checks compare it with that posting.
    from_available_minor: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    created_at: Mapped[datetime] = created_at_column()
    updated_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), server_default=func.now(), onupdate=func.now()
    )


class RefundAttempt(Base):
    """Every step a refund took: channel requests and their outcome, escalation, manual transfer."""

    __tablename__ = "refund_attempts"
    __table_args__ = (UniqueConstraint("refund_no", "seq", name="uq_refund_attempts_refund_seq"),)

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    refund_no: Mapped[str] = mapped_column(ForeignKey("refunds.refund_no"), index=True)
    seq: Mapped[int] = mapped_column(Integer)
    kind: Mapped[str] = mapped_column(String(20))
    status: Mapped[str] = mapped_column(String(20))
    detail: Mapped[str] = mapped_column(Text, default="")
    at: Mapped[datetime] = created_at_column()
