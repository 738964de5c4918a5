"""Refunds: statuses and the contracts of the refund flow (pure)."""

from __future__ import annotations

from enum import StrEnum

from pydantic import BaseModel, Field, model_validator

from domain.ids import CodeId


class RefundStatus(StrEnum):
    PROCESSING = "PROCESSING"
    SUCCEEDED = "SUCCEEDED"
    MANUAL_PENDING = "MANUAL_PENDING"
    MANUAL_PAID = "MANUAL_PAID"
    FAILED = "FAILED"


# Money promised back: counted against what may still be refunded until the refund ends.
HOLDING = (RefundStatus.PROCESSING, RefundStatus.MANUAL_PENDING, RefundStatus.SUCCEEDED, RefundStatus.MANUAL_PAID)
# Not ended yet: its order's amounts may still change, so no settlement cycle may claim the order.
IN_FLIGHT = (RefundStatus.PROCESSING, RefundStatus.MANUAL_PENDING)


class RefundOrigin(StrEnum):
    API = "api"  # after-sale request from the platform app or finance
    ORDER = "order"  # the order flow returning a payment it cannot honour
    PAYMENT = "payment"  # money that arrived twice (a second channel) for one payment
    FINANCE = "finance"  # finance returning money outside the after-sale window, settled orders included


class RefundRequest(BaseModel):
    """An amount, or units of one item: then the amount is what the customer paid for them (the item's
    price less its share of the coupon discounts, domain.promotions.item_refund_minor)."""

    amount_minor: int | None = Field(default=None, gt=0, le=10**12)
    sku_id: CodeId | None = None
    quantity: int | None = Field(default=None, gt=0, le=10_000)
    reason: str = Field(min_length=1, max_length=500)

    @model_validator(mode="after")
    def _one_way(self) -> RefundRequest:
        if (self.amount_minor is None) == (self.sku_id is None):
            raise ValueError("give either amount_minor or sku_id (with quantity), not both")
        if self.sku_id is None and self.quantity is not None:
            raise ValueError("quantity goes with sku_id")
        return self


class RefundTerms(BaseModel):
    poll_initial_seconds: int
    poll_max_seconds: int
    approval_remind_seconds: int
    notify_url: str
    manual_bank: str


class RefundInput(BaseModel):
    refund_no: str
    order_no: str
    payment_no: str
    channel: str | None = None  # None: the channel the order was paid through
    amount_minor: int
    subsidy_minor: int | None = None  # an item refund: that item's share of the order's promotion subsidy
    reason: str
    origin: RefundOrigin
    requested_by: str
    requested_by_key_id: int | None = None
    terms: RefundTerms


class RefundOpened(BaseModel):
    refund_no: str
    status: RefundStatus
    order_no: str
    amount_minor: int


class RefundResult(BaseModel):
    refund_no: str
    status: RefundStatus
    failure_reason: str | None = None


class ManualApproval(BaseModel):
    approver: str
    approver_key_id: int
    note: str = ""


# ---- activity contracts ----------------------------------------------------------------------
class OpenedRefund(BaseModel):
    """What `refunds.open` found or created: the refund as recorded, with the capture it returns."""

    status: RefundStatus
    channel: str
    currency: str
    merchant_id: str


class RefundAttemptRecord(BaseModel):
    refund_no: str
    seq: int
    kind: str  # channel, manual
    status: str  # REQUESTED, SUCCEEDED, FAILED, ESCALATED, APPROVED
    detail: str = ""


class RefundCompletion(BaseModel):
    refund_no: str
    manual: bool = False
    approved_by: str | None = None
    approved_by_key_id: int | None = None  # with approved_by and note: the audit row of the approval
    note: str = ""
    bank: str | None = None


class RefundEscalation(BaseModel):
    refund_no: str
    reason: str
    seq: int  # of the ESCALATED attempt recorded with it


class ChannelRefundRequest(BaseModel):
    channel: str
    refund_no: str
    payment_no: str
    amount_minor: int
    reason: str
    notify_url: str


class ChannelRefundView(BaseModel):
    status: str  # PROCESSING, SUCCESS, FAILED, MISSING
    failure_reason: str | None = None


class RefundNotification(BaseModel):
    event_id: str
    event_type: str
    out_refund_no: str
    status: str | None = None
    failure_reason: str | None = None
