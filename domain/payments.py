"""Payments: statuses, channel routing and the contracts between the order and payment flows (pure)."""

from __future__ import annotations

import random
from datetime import datetime
from enum import StrEnum

from pydantic import BaseModel

from domain.refunds import RefundTerms


class PaymentStatus(StrEnum):
    PENDING = "PENDING"
    SUCCEEDED = "SUCCEEDED"
    CLOSED = "CLOSED"
    FAILED = "FAILED"


class AttemptStatus(StrEnum):
    CREATED = "CREATED"
    FAILED = "FAILED"
    CLOSED = "CLOSED"
    PAID = "PAID"


def route_channels(weights: dict[str, int], preferred: str | None, rng: random.Random) -> list[str]:
    """The order in which to try channels: the caller's preference first when it is enabled, then the
    others drawn by weight. Pass a deterministic `rng` (workflow.random()) so replay gives the same order."""
    enabled = {ch: w for ch, w in weights.items() if w > 0}
    order: list[str] = []
    if preferred in enabled:
        order.append(preferred)
        del enabled[preferred]
    while enabled:
        channels = sorted(enabled)
        pick = rng.choices(channels, weights=[enabled[c] for c in channels])[0]
        order.append(pick)
        del enabled[pick]
    return order


def poll_delay(initial: int, cap: int, polls_so_far: int) -> int:
    """Seconds before the next poll of a party: initial, doubling with each poll, capped."""
    return max(1, min(cap, max(1, initial) * 2**polls_so_far))


class PaymentInput(BaseModel):
    payment_no: str
    order_no: str
    merchant_id: str
    amount_minor: int
    currency: str
    description: str
    preferred_channel: str | None
    channel_weights: dict[str, int]
    timeout_seconds: int
    poll_initial_seconds: int
    poll_max_seconds: int
    notify_url: str
    parent_workflow_id: str
    refund_terms: RefundTerms
    # "order": the capture is held in escrow (PAYMENT_CAPTURED); "deposit": a merchant's security
    # deposit (DEPOSIT_PAID to merchant:{m}:deposit).
    purpose: str = "order"
    # Set by an order flow that takes a plain success from this flow's result (workflows/order.py:
    # PAID_BY_RESULT): then a payment paid through the one channel it opened ends with no SUCCEEDED
    # signal. Such a flow was started by code that has the payment flow's local steps too, so it runs
    # them without asking workflow.patched (no marker, no search-attribute upsert). False in older
    # histories and for deposits: signals and the patch as before.
    reports_by_result: bool = False
    # Set by an order flow that opened the channel order itself in its first task, to answer the
    # placement at once (workflows/order.py: OPENS_PAYMENT): this flow does not route again and tells
    # no READY, it waits for the payment on that channel order from the first moment. Such an order
    # also sets `reports_by_result`. None in older histories and for deposits: this flow routes.
    opened: OpenedPayment | None = None


class PaymentEventKind(StrEnum):
    READY = "ready"  # the channel order exists; the customer can pay
    SUCCEEDED = "succeeded"  # captured and posted
    EXPIRED = "expired"  # deadline reached; the payment is being closed
    FAILED = "failed"  # no channel could take the payment


class PaymentEvent(BaseModel):
    """What the payment flow tells the order flow (signal)."""

    kind: PaymentEventKind
    payment_no: str
    channel: str | None = None
    pay_url: str | None = None
    expires_at: datetime | None = None
    amount_minor: int = 0
    reason: str | None = None


class PaymentResult(BaseModel):
    payment_no: str
    status: PaymentStatus
    channel: str | None
    paid_after_cancel: bool = False
    attempts: int = 0
    polls: int = 0


class ChannelNotification(BaseModel):
    """The fields of a channel's payment notification the payment flow acts on."""

    event_id: str
    event_type: str
    party: str
    out_trade_no: str
    amount_minor: int
    currency: str
    status: str | None = None
    channel_txn_id: str | None = None


# ---- activity contracts ----------------------------------------------------------------------
class ChannelOrderRequest(BaseModel):
    channel: str
    payment_no: str
    amount_minor: int
    currency: str
    description: str
    notify_url: str


class ChannelOrderView(BaseModel):
    """A channel's view of our payment, as the flow needs it."""

    channel: str
    status: str  # NOTPAY, SUCCESS, CLOSED, or MISSING when the channel has no such order
    pay_url: str | None = None
    channel_order_id: str | None = None
    channel_txn_id: str | None = None
    amount_minor: int = 0
    currency: str = ""


class OpenedPayment(BaseModel):
    """The channel order an order flow opened before starting the payment flow, and what it took."""

    view: ChannelOrderView  # the channel order the customer pays (pay_url)
    tried: list[str]  # every channel asked, in order; a refused create may have landed all the same
    attempts: int  # attempt records written so far (the payment flow numbers on from here)
    deadline: datetime  # when the payment expires, as the customer was told


class AttemptRecord(BaseModel):
    payment_no: str
    order_no: str
    merchant_id: str
    amount_minor: int
    currency: str
    seq: int
    channel: str
    status: AttemptStatus
    channel_order_id: str | None = None
    pay_url: str | None = None
    error: str | None = None


class CaptureRequest(BaseModel):
    payment_no: str
    order_no: str
    channel: str
    channel_txn_id: str | None
    amount_minor: int
    currency: str
    after_cancel: bool = False
    purpose: str = "order"
    merchant_id: str | None = None  # whose deposit, when purpose is "deposit"


class Captured(BaseModel):
    entry_id: int
    first: bool  # False when the payment had already succeeded through another channel


class PaymentOutcome(BaseModel):
    payment_no: str
    status: PaymentStatus
    reason: str | None = None
