"""Merchant onboarding: statuses, the application, review decisions and the contracts of the flow (pure).

The clear identity and bank account numbers exist only in the API request and, encrypted, in the
database: every workflow contract below carries ids and versions, never the numbers themselves.
"""

from __future__ import annotations

from enum import StrEnum

from pydantic import BaseModel, Field, field_validator

from domain import numbers
from domain.ids import CodeId, CurrencyCode
from domain.money import CURRENCIES
from domain.refunds import RefundTerms
from domain.refusals import Refusal, Refused


class MerchantStatus(StrEnum):
    SUBMITTED = "SUBMITTED"
    VERIFYING = "VERIFYING"
    IN_REVIEW = "IN_REVIEW"
    CHANGES_REQUESTED = "CHANGES_REQUESTED"
    SECOND_REVIEW = "SECOND_REVIEW"
    CONTRACTING = "CONTRACTING"
    AWAITING_DEPOSIT = "AWAITING_DEPOSIT"
    ACTIVE = "ACTIVE"
    REJECTED = "REJECTED"
    EXPIRED = "EXPIRED"


REVIEW_STAGES = (MerchantStatus.IN_REVIEW, MerchantStatus.SECOND_REVIEW)
FINAL = (MerchantStatus.ACTIVE, MerchantStatus.REJECTED, MerchantStatus.EXPIRED)


class RiskLevel(StrEnum):
    LOW = "low"
    HIGH = "high"


class KycCheck(StrEnum):
    LICENCE = "licence"
    IDENTITY = "identity"
    BANK = "bank"


KYC_CHECKS = (KycCheck.LICENCE, KycCheck.IDENTITY, KycCheck.BANK)


class KycStatus(StrEnum):
    PROCESSING = "PROCESSING"
    PASS = "PASS"
    MISMATCH = "MISMATCH"


class ReviewDecision(StrEnum):
    APPROVE = "approve"
    REJECT = "reject"
    REQUEST_CHANGES = "request_changes"


def last4(number: str) -> str:
    return number[-4:]


def masked(tail: str) -> str:
    """How a sensitive number is shown: only its last four characters."""
    return f"****{tail}"


# ---- API contract ----------------------------------------------------------------------------
class Application(BaseModel):
    """What an applicant submits (and resubmits, corrected)."""

    name: str = Field(min_length=1, max_length=200)
    category: CodeId
    currency: CurrencyCode = "CNY"
    contact_name: str = Field(min_length=1, max_length=100)
    contact_phone: str = Field(min_length=5, max_length=30, pattern=r"^\+?[0-9 \-]+$")
    business_licence_no: str = Field(min_length=8, max_length=30, pattern=r"^[0-9A-Z]+$")
    legal_person_name: str = Field(min_length=1, max_length=100)
    legal_person_id_no: str = Field(min_length=15, max_length=18, pattern=r"^[0-9]{14,17}[0-9X]$")
    bank_account_name: str = Field(min_length=1, max_length=200)
    bank_account_no: str = Field(min_length=8, max_length=30, pattern=r"^[0-9]+$")
    bank_name: str = Field(min_length=1, max_length=100)

    @field_validator("currency")
    @classmethod
    def _currency(cls, value: str) -> str:
        if value not in CURRENCIES:
            raise ValueError(f"currency {value!r} is not supported")
        return value


class ReviewRequest(BaseModel):
    decision: ReviewDecision
    reason: str = Field(min_length=1, max_length=1000)


class Category(BaseModel):
    code: str = Field(min_length=1, max_length=64, pattern=r"^[a-z0-9_]+$")
    name: str = Field(min_length=1, max_length=200)
    risk_level: RiskLevel
    deposit_minor: int = Field(ge=0, le=10**10)
    currency: str = "CNY"


class MerchantView(BaseModel):
    """What the flow's updates answer once the database shows the change."""

    merchant_id: str
    status: MerchantStatus


# ---- workflow contracts ----------------------------------------------------------------------
class OnboardingTerms(BaseModel):
    """Durations copied from settings at start: a running onboarding keeps the terms it started with."""

    review_remind_seconds: int
    review_escalate_seconds: int
    resubmit_window_seconds: int
    contract_sign_window_seconds: int
    kyc_poll_seconds: int
    notify_url: str
    payment_timeout_seconds: int
    payment_poll_initial_seconds: int
    payment_poll_max_seconds: int
    channel_weights: dict[str, int]
    refund: RefundTerms


class OnboardingInput(BaseModel):
    merchant_id: str
    terms: OnboardingTerms


class OnboardingResult(BaseModel):
    merchant_id: str
    status: MerchantStatus
    reason: str | None = None


class Reviewer(BaseModel):
    """Who decides (from the API key): the flow refuses the same person for both reviews."""

    actor: str
    name: str
    key_id: int
    role: str


class ReviewInput(BaseModel):
    decision: ReviewDecision
    reason: str
    by: Reviewer


class Resubmission(BaseModel):
    version: int  # of the corrected application the API stored (encrypted) before asking the flow


# ---- activity contracts ----------------------------------------------------------------------
class Terms(BaseModel):
    """The category's terms as snapshotted when the application was recorded."""

    category: str
    risk_level: RiskLevel
    deposit_minor: int
    currency: str


class KycResult(BaseModel):
    check: KycCheck
    request_no: str
    status: str  # PROCESSING, PASS, MISMATCH
    findings: str | None = None


class KycRequest(BaseModel):
    merchant_id: str
    version: int
    check: KycCheck
    notify_url: str

    @property
    def request_no(self) -> str:
        return numbers.kyc_request_no(self.merchant_id, self.version, self.check.value)


class ContractRequest(BaseModel):
    merchant_id: str
    round: int
    notify_url: str

    @property
    def request_no(self) -> str:
        return numbers.contract_request_no(self.merchant_id, self.round)


class Contract(BaseModel):
    contract_id: str
    request_no: str
    sign_url: str
    status: str  # CREATED, SIGNED


class Deposit(BaseModel):
    payment_no: str
    amount_minor: int
    pay_url: str


class ReviewRecord(BaseModel):
    stage: MerchantStatus
    decision: ReviewDecision
    reason: str
    by: Reviewer
    version: int


class OnboardingTransition(BaseModel):
    """Move a merchant to `to` and record `event` on its timeline, with whatever the step produced,
    in one transaction (idempotent on the event name)."""

    merchant_id: str
    event: str
    cause: str
    to: MerchantStatus | None = None
    version: int | None = None
    review: ReviewRecord | None = None
    kyc: list[KycResult] | None = None
    contract: Contract | None = None
    deposit: Deposit | None = None
    open_accounts: bool = False


class OnboardingNotification(BaseModel):
    """The fields of a KYC or e-sign notification the flow acts on (ids and results, no numbers)."""

    event_id: str
    event_type: str
    merchant_ref: str
    request_no: str
    result: str | None = None
    findings: str | None = None
    contract_id: str | None = None


def check_resubmission(merchant_id: str, status: str, category: str, new_category: str) -> None:
    """A corrected application answers a request for changes, and keeps its category (another category
    is a new application with its own checks, deposit and risk level)."""
    if status != MerchantStatus.CHANGES_REQUESTED:
        raise Refused(Refusal.NOT_AWAITING_CHANGES, f"merchant {merchant_id} is {status}")
    if new_category != category:
        raise Refused(Refusal.CATEGORY_CHANGED, "a different category is a new application, not a correction")
