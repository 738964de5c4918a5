"""Raw notifications from outside parties, stored before anything acts on them."""

from datetime import datetime
from typing import Any

from sqlalchemy import BigInteger, DateTime, String, Text, UniqueConstraint
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import Mapped, mapped_column

from db.base import Base, created_at_column


class InboundNotification(Base):
    __tablename__ = "inbound_notifications"
    # The party's own event id is the deduplication key: a redelivery inserts nothing.
    __table_args__ = (UniqueConstraint("party", "event_id", name="uq_inbound_notifications_party_event"),)

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    party: Mapped[str] = mapped_column(String(20))
    event_id: Mapped[str] = mapped_column(String(100))
    event_type: Mapped[str] = mapped_column(String(50))
    subject_ref: Mapped[str] = mapped_column(String(100), index=True)
    raw_body: Mapped[str] = mapped_column(Text)
    payload: Mapped[dict[str, Any]] = mapped_column(JSONB)
    received_at: Mapped[datetime] = created_at_column()
    routed_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    route_error: Mapped[str | None] = mapped_column(Text, nullable=True)
    refused_reason: Mapped[str | None] = mapped_column(Text, nullable=True)
    """Why the notification was refused (another party's subject, another amount...): never acted on."""


class CallbackNonce(Base):
    """Signature nonces accepted from each party within the freshness window: the same signed request
    is accepted once, even by another API process."""

    __tablename__ = "callback_nonces"

    party: Mapped[str] = mapped_column(String(20), primary_key=True)
    nonce: Mapped[str] = mapped_column(String(64), primary_key=True)
    seen_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), index=True)
