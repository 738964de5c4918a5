from datetime import datetime

from sqlalchemy import BigInteger, Boolean, CheckConstraint, ForeignKey, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from db.base import Base, created_at_column


class LedgerAccount(Base):
    __tablename__ = "ledger_accounts"
    __table_args__ = (
        UniqueConstraint("code", "currency", name="uq_ledger_accounts_code_currency"),
        CheckConstraint("may_go_negative OR balance_minor >= 0", name="no_forbidden_negative"),
    )

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    code: Mapped[str] = mapped_column(String(200))
    currency: Mapped[str] = mapped_column(String(3))
    kind: Mapped[str] = mapped_column(String(20))
    normal_side: Mapped[str] = mapped_column(String(1))
    may_go_negative: Mapped[bool] = mapped_column(Boolean)
    # Kept in the account's normal direction: a credit-normal liability grows with credits.
    balance_minor: Mapped[int] = mapped_column(BigInteger, default=0, server_default="0")
    created_at: Mapped[datetime] = created_at_column()


class JournalEntry(Base):
    __tablename__ = "journal_entries"

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    tx_code: Mapped[str] = mapped_column(String(40), index=True)
    idempotency_key: Mapped[str] = mapped_column(String(200), unique=True)
    reference: Mapped[str] = mapped_column(String(200), index=True)
    currency: Mapped[str] = mapped_column(String(3))
    content_hash: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = created_at_column()


class JournalLine(Base):
    __tablename__ = "journal_lines"
    __table_args__ = (
        CheckConstraint("amount_minor > 0", name="positive_amount"),
        CheckConstraint("side IN ('D', 'C')", name="side"),
    )

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    entry_id: Mapped[int] = mapped_column(ForeignKey("journal_entries.id"), index=True)
    account_id: Mapped[int] = mapped_column(ForeignKey("ledger_accounts.id"), index=True)
    side: Mapped[str] = mapped_column(String(1))
    amount_minor: Mapped[int] = mapped_column(BigInteger)
    balance_after_minor: Mapped[int] = mapped_column(BigInteger)
