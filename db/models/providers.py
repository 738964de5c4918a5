"""Service providers: the people who do the work, the merchant they belong to (or the platform's pool),
what they serve, whether they are online, and the one order each is serving."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Boolean, DateTime, ForeignKey, String, Text
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.orm import Mapped, mapped_column

from db.base import Base, created_at_column


class ServiceProvider(Base):
    __tablename__ = "service_providers"

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    # None: the platform's crowd-sourced pool; otherwise the merchant's own staff.
    merchant_id: Mapped[str | None] = mapped_column(ForeignKey("merchants.id"), nullable=True, index=True)
    categories: Mapped[list[str]] = mapped_column(ARRAY(String(64)), default=list)
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    online: Mapped[bool] = mapped_column(Boolean, default=False)
    # The order the provider is serving (offered, accepted or in service). One column, unique: a provider
    # can never be given two orders, whatever dispatches race.
    current_order_no: Mapped[str | None] = mapped_column(String(40), nullable=True, unique=True)
    # Dispatch rotates: the provider idle longest is offered the next order.
    last_assigned_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    phone_enc: Mapped[str | None] = mapped_column(Text, nullable=True)
    phone_last4: Mapped[str | None] = mapped_column(String(4), nullable=True)
    id_no_enc: Mapped[str | None] = mapped_column(Text, nullable=True)
    id_no_last4: Mapped[str | None] = mapped_column(String(4), nullable=True)
    created_at: Mapped[datetime] = created_at_column()
