"""What GET /v1/withdrawals and GET /v1/withdrawals/{withdrawal_id} answer."""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, Field


class MaskedBankAccount(BaseModel):
    account_name: str
    account_no: str = Field(description="masked: only the last four digits show")
    bank_name: str


class BatchView(BaseModel):
    batch_id: str
    status: str
    item_count: int


class WithdrawalView(BaseModel):
    withdrawal_id: str
    merchant_id: str
    status: str = Field(description="PENDING_APPROVAL, QUEUED, SUBMITTED, PAID, FAILED, REJECTED or UNKNOWN")
    amount_minor: int
    currency: str
    bank_account: MaskedBankAccount
    requested_by: str
    decided_by: str | None
    decision_note: str | None
    batch: BatchView | None = Field(description="the payout batch (in the single view; null in lists)")
    bank_ref: str | None
    failure_reason: str | None
    resolved_by: str | None
    bank_conflict: str | None = Field(description="a bank result that contradicts finance's resolution")
    created_at: datetime
    updated_at: datetime
