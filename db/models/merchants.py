"""Merchant onboarding: categories (operator data), applications (numbers encrypted), KYC checks, reviews,
the onboarding's own state (contract, deposit) and the merchant's timeline."""

from datetime import datetime
from typing import Any

from sqlalchemy import BigInteger, DateTime, ForeignKey, Integer, String, Text, UniqueConstraint, func
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import Mapped, mapped_column

from db.base import Base, created_at_column


class MerchantCategory(Base):
    """Risk level and security deposit per category: data the operators change, read when an application
    is recorded (the onboarding keeps the terms it started with)."""

    __tablename__ = "merchant_categories"

    code: Mapped[str] = mapped_column(String(64), primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    risk_level: Mapped[str] = mapped_column(String(10))  # low, high
    deposit_minor: Mapped[int] = mapped_column(BigInteger)  # 0: no deposit
    currency: Mapped[str] = mapped_column(String(3))
    updated_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), server_default=func.now(), onupdate=func.now()
    )


class MerchantApplication(Base):
    """One version of an application: 1 as submitted, then one per resubmission. Written by the API
    before it asks the flow (so the flow's history carries only the version), never changed after."""

    __tablename__ = "merchant_applications"
    __table_args__ = (UniqueConstraint("merchant_id", "version", name="uq_merchant_applications_merchant_version"),)

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    # No foreign key: version 1 exists before the flow records the merchant.
    merchant_id: Mapped[str] = mapped_column(String(64), index=True)
    version: Mapped[int] = mapped_column(Integer)
    name: Mapped[str] = mapped_column(String(200))
    category: Mapped[str] = mapped_column(String(64))
    currency: Mapped[str] = mapped_column(String(3))
    contact_name: Mapped[str] = mapped_column(String(100))
    contact_phone: Mapped[str] = mapped_column(String(30))
    business_licence_no: Mapped[str] = mapped_column(String(30))
    legal_person_name: Mapped[str] = mapped_column(String(100))
    # Fernet tokens (domain.crypto); the last four are kept apart for masked display.
    legal_person_id_enc: Mapped[str] = mapped_column(Text)
    legal_person_id_last4: Mapped[str] = mapped_column(String(4))
    bank_account_name: Mapped[str] = mapped_column(String(200))
    bank_account_enc: Mapped[str] = mapped_column(Text)
    bank_account_last4: Mapped[str] = mapped_column(String(4))
    bank_name: Mapped[str] = mapped_column(String(100))
    submitted_by: Mapped[str] = mapped_column(String(200))
    created_at: Mapped[datetime] = created_at_column()


class MerchantOnboarding(Base):
    """What the onboarding flow has established beyond the merchant's status."""

    __tablename__ = "merchant_onboardings"

    merchant_id: Mapped[str] = mapped_column(ForeignKey("merchants.id"), primary_key=True)
    application_version: Mapped[int] = mapped_column(Integer)
    risk_level: Mapped[str] = mapped_column(String(10))
    deposit_minor: Mapped[int] = mapped_column(BigInteger)
    contract_id: Mapped[str | None] = mapped_column(String(100), nullable=True)
    sign_url: Mapped[str | None] = mapped_column(Text, nullable=True)
    contract_signed: Mapped[bool] = mapped_column(default=False)
    deposit_payment_no: Mapped[str | None] = mapped_column(String(40), nullable=True)
    deposit_pay_url: Mapped[str | None] = mapped_column(Text, nullable=True)
    accounts_opened: Mapped[bool] = mapped_column(default=False)
    reason: Mapped[str | None] = mapped_column(Text, nullable=True)
    updated_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), server_default=func.now(), onupdate=func.now()
    )


class KycCheckResult(Base):
    __tablename__ = "merchant_kyc_checks"
    __table_args__ = (UniqueConstraint("request_no", name="uq_merchant_kyc_checks_request_no"),)

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    merchant_id: Mapped[str] = mapped_column(ForeignKey("merchants.id"), index=True)
    version: Mapped[int] = mapped_column(Integer)
    kind: Mapped[str] = mapped_column(String(20))  # licence, identity, bank
    request_no: Mapped[str] = mapped_column(String(100))
    status: Mapped[str] = mapped_column(String(20))  # PASS, MISMATCH
    findings: Mapped[str | None] = mapped_column(Text, nullable=True)
    at: Mapped[datetime] = created_at_column()


class MerchantReview(Base):
    """The review history: every decision, by whom, on which application version."""

    __tablename__ = "merchant_reviews"
    __table_args__ = (UniqueConstraint("merchant_id", "event", name="uq_merchant_reviews_merchant_event"),)

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    merchant_id: Mapped[str] = mapped_column(ForeignKey("merchants.id"), index=True)
    event: Mapped[str] = mapped_column(String(60))
    stage: Mapped[str] = mapped_column(String(30))
    decision: Mapped[str] = mapped_column(String(20))
    reason: Mapped[str] = mapped_column(Text)
    auditor: Mapped[str] = mapped_column(String(200))
    auditor_key_id: Mapped[int] = mapped_column(BigInteger)
    application_version: Mapped[int] = mapped_column(Integer)
    at: Mapped[datetime] = created_at_column()


class MerchantEvent(Base):
    """The merchant's onboarding timeline; event names are unique so a retried activity writes nothing."""

    __tablename__ = "merchant_timeline"
    __table_args__ = (UniqueConstraint("merchant_id", "event", name="uq_merchant_timeline_merchant_event"),)

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    merchant_id: Mapped[str] = mapped_column(ForeignKey("merchants.id"), index=True)
    event: Mapped[str] = mapped_column(String(60))
    status_from: Mapped[str | None] = mapped_column(String(30), nullable=True)
    status_to: Mapped[str | None] = mapped_column(String(30), nullable=True)
    cause: Mapped[str] = mapped_column(Text)
    details: Mapped[dict[str, Any]] = mapped_column(JSONB, default=dict)
    at: Mapped[datetime] = created_at_column()
