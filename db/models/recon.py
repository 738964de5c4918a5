"""Reconciliation: runs against a party's statement, the raw files, staged lines and discrepancies."""

from datetime import date, datetime
from typing import Any

from sqlalchemy import BigInteger, Date, DateTime, ForeignKey, Integer, LargeBinary, String, Text, func
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import Mapped, mapped_column

from db.base import Base, created_at_column


class ReconFile(Base):
    """Immutable (a trigger refuses UPDATE and DELETE): the bytes the party sent, once per sha256."""

    __tablename__ = "recon_files"

    sha256: Mapped[str] = mapped_column(String(64), primary_key=True)
    source: Mapped[str] = mapped_column(String(20))
    bill_date: Mapped[date] = mapped_column(Date)
    size_bytes: Mapped[int] = mapped_column(BigInteger)
    content: Mapped[bytes] = mapped_column(LargeBinary)
    created_at: Mapped[datetime] = created_at_column()


class ReconRun(Base):
    __tablename__ = "recon_runs"

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    # "{workflow id}/{run id}": one flow execution opens one run, an activity retried after its commit finds it.
    flow: Mapped[str] = mapped_column(String(120), unique=True)
    source: Mapped[str] = mapped_column(String(20))
    bill_date: Mapped[date] = mapped_column(Date)
    status: Mapped[str] = mapped_column(String(20))  # RUNNING, MATCHED, EMPTY, FAILED
    file_sha256: Mapped[str | None] = mapped_column(ForeignKey("recon_files.sha256"), nullable=True)
    lines: Mapped[int] = mapped_column(Integer, default=0)
    counts: Mapped[dict[str, Any]] = mapped_column(JSONB, default=dict)
    statement_totals: Mapped[dict[str, Any]] = mapped_column(JSONB, default=dict)
    platform_totals: Mapped[dict[str, Any]] = mapped_column(JSONB, default=dict)
    failure: Mapped[str | None] = mapped_column(Text, nullable=True)
    created_at: Mapped[datetime] = created_at_column()
    finished_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)


class ReconStatementLine(Base):
    """Staging; written only with COPY (db/recon.py)."""

    __tablename__ = "recon_statement_lines"

    run_id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    line_no: Mapped[int] = mapped_column(Integer, primary_key=True)
    kind: Mapped[str] = mapped_column(String(10))
    our_no: Mapped[str] = mapped_column(String(64))
    order_ref: Mapped[str | None] = mapped_column(String(64), nullable=True)
    party_no: Mapped[str] = mapped_column(String(100))
    status: Mapped[str] = mapped_column(String(20))
    amount_minor: Mapped[int] = mapped_column(BigInteger)
    fee: Mapped[int] = mapped_column(BigInteger)
    currency: Mapped[str] = mapped_column(String(3))
    occurred_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class ReconDiscrepancy(Base):
    __tablename__ = "recon_discrepancies"

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    run_id: Mapped[int] = mapped_column(ForeignKey("recon_runs.id"), index=True)
    source: Mapped[str] = mapped_column(String(20))
    bill_date: Mapped[date] = mapped_column(Date)
    type: Mapped[str] = mapped_column(String(24))
    kind: Mapped[str] = mapped_column(String(10))
    our_no: Mapped[str] = mapped_column(String(64))
    statement_minor: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    platform_minor: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    detail: Mapped[str] = mapped_column(Text, default="")
    status: Mapped[str] = mapped_column(String(20))  # OPEN, HELD, RESOLVED
    resolved_by_run_id: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    action: Mapped[str | None] = mapped_column(String(30), nullable=True)
    note: Mapped[str] = mapped_column(Text, default="")
    decided_by: Mapped[str | None] = mapped_column(String(200), nullable=True)
    history: Mapped[list[Any]] = mapped_column(JSONB, default=list)
    ledger_entry_id: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    created_at: Mapped[datetime] = created_at_column()
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
