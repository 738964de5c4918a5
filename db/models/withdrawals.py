"""Withdrawals (merchant money on its way to the merchant's bank account) and the payout batches that carry them."""

from datetime import datetime

from sqlalchemy import BigInteger, DateTime, Index, Integer, String, Text, func
from sqlalchemy.orm import Mapped, mapped_column

from db.base import Base, created_at_column


class Withdrawal(Base):
    """One withdrawal. The settlement bank account is copied (still encrypted) when the money is frozen,
    so a payout goes to the account that was verified when the merchant asked, whatever changes later."""

    __tablename__ = "withdrawals"
    __table_args__ = (
        Index("ix_withdrawals_merchant_created", "merchant_id", "created_at"),
        # The payout batch claims queued withdrawals oldest first.
        Index("ix_withdrawals_queued", "status", "queued_at"),
    )

    withdrawal_id: Mapped[str] = mapped_column(String(48), primary_key=True)
    merchant_id: Mapped[str] = mapped_column(String(64))
    amount_minor: Mapped[int] = mapped_column(BigInteger)
    currency: Mapped[str] = mapped_column(String(3))
    status: Mapped[str] = mapped_column(String(20))
    bank_account_name: Mapped[str] = mapped_column(String(200))
    bank_account_enc: Mapped[str] = mapped_column(Text)
    bank_account_last4: Mapped[str] = mapped_column(String(4))
    bank_name: Mapped[str] = mapped_column(String(100))
    requested_by: Mapped[str] = mapped_column(String(200))
    requested_by_key_id: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    decided_by: Mapped[str | None] = mapped_column(String(200), nullable=True)
    decision_note: Mapped[str | None] = mapped_column(Text, nullable=True)
    batch_id: Mapped[str | None] = mapped_column(String(48), nullable=True, index=True)
    bank_ref: Mapped[str | None] = mapped_column(String(100), nullable=True)
    failure_reason: Mapped[str | None] = mapped_column(Text, nullable=True)
    resolved_by: Mapped[str | None] = mapped_column(String(200), nullable=True)
    # A bank result that came after the outcome was recorded (by finance) and contradicts it: no money
    # moves on it; finance settles it with the bank.
    bank_conflict: Mapped[str | None] = mapped_column(Text, nullable=True)
    freeze_entry_id: Mapped[int] = mapped_column(BigInteger)
    outcome_entry_id: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    queued_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    created_at: Mapped[datetime] = created_at_column()
    updated_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), server_default=func.now(), onupdate=func.now()
    )


class PayoutBatch(Base):
    __tablename__ = "payout_batches"

    batch_id: Mapped[str] = mapped_column(String(48), primary_key=True)
    status: Mapped[str] = mapped_column(String(20))  # SUBMITTED, CLOSED
    item_count: Mapped[int] = mapped_column(Integer)
    total_minor: Mapped[int] = mapped_column(BigInteger)
    paid: Mapped[int] = mapped_column(Integer, default=0)
    failed: Mapped[int] = mapped_column(Integer, default=0)
    unknown: Mapped[int] = mapped_column(Integer, default=0)
    created_at: Mapped[datetime] = created_at_column()
    closed_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
