"""What GET /v1/merchants/{merchant_id} and /balance answer (identity and bank numbers masked)."""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, Field


class ApplicationView(BaseModel):
    version: int
    name: str
    category: str
    currency: str
    contact_name: str
    contact_phone: str
    business_licence_no: str
    legal_person_name: str
    legal_person_id_no: str = Field(description="masked")
    bank_account_name: str
    bank_account_no: str = Field(description="masked")
    bank_name: str
    submitted_at: datetime


class KycCheckView(BaseModel):
    version: int
    check: str
    status: str
    findings: str | None
    at: datetime


class ReviewView(BaseModel):
    stage: str
    decision: str
    reason: str
    auditor: str
    application_version: int
    at: datetime


class MerchantEventView(BaseModel):
    event: str
    status_from: str | None
    status_to: str | None
    cause: str
    at: datetime


class ContractView(BaseModel):
    contract_id: str
    sign_url: str | None
    signed: bool


class DepositView(BaseModel):
    payment_no: str
    amount_minor: int
    pay_url: str | None


class MerchantDetail(BaseModel):
    merchant_id: str
    name: str
    category: str
    currency: str
    status: str = Field(description="SUBMITTED, VERIFYING, IN_REVIEW, ..., ACTIVE, REJECTED or EXPIRED")
    risk_level: str | None
    deposit_required_minor: int
    application_version: int | None
    reason: str | None
    contract: ContractView | None = Field(description="while CONTRACTING")
    deposit: DepositView | None = Field(description="while AWAITING_DEPOSIT")
    applications: list[ApplicationView]
    kyc_checks: list[KycCheckView]
    reviews: list[ReviewView]
    timeline: list[MerchantEventView]


class Balance(BaseModel):
    merchant_id: str
    currency: str
    available_minor: int
    withdrawing_minor: int
    deposit_minor: int
    unsettled_minor: int
