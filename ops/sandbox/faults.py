"""Fault knobs per outside party: how tests make the outside world slow, broken or surprising.

Knobs are stored in SQLite with the rest of the sandbox state, so a fault set before a sandbox
restart is still in force after it (a restart must not silently heal a test scenario).
"""

from __future__ import annotations

import asyncio
import random
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, StrictBool, ValidationError

from ops.sandbox.errors import SandboxError, invalid

PARTIES = ("wechat", "alipay", "bank", "kyc", "esign")
PAYMENT_CHANNELS = ("wechat", "alipay")


class Faults(BaseModel):
    # extra="forbid": a misspelt knob must fail loudly, not leave the test running without its fault.
    model_config = ConfigDict(extra="forbid")

    down: StrictBool = False
    error_rate: float = Field(default=0.0, ge=0.0, le=1.0)
    latency_ms: int = Field(default=0, ge=0, le=120_000)
    drop_callbacks: StrictBool = False
    duplicate_callbacks: StrictBool = False
    callback_delay_ms: int = Field(default=0, ge=0, le=7 * 24 * 3600 * 1000)
    refund_failure: Literal["none", "transient", "permanent"] = "none"
    payout_failure: Literal["none", "transient", "permanent", "unknown"] = "none"
    kyc_result: Literal["pass", "mismatch"] = "pass"
    # Only the query API fails (503) while create/close/pay work: real channels lose one API at a time,
    # and it is how a test makes a payment invisible to polling until the deadline.
    query_down: StrictBool = False
    # The first request of a refund lands but its answer is lost (503), and a repeat of that refund
    # number is refused (409 REFUND_EXISTS) instead of answered again, as some channels do.
    refund_retry_refused: StrictBool = False
    # The refund query answers 404 even for refunds the channel has (its query side lags behind).
    refund_query_missing: StrictBool = False
    # Bank payouts: the first submit of a batch is recorded but its answer is lost (504), and a batch
    # number the bank already holds is refused (409): how a retried submit meets a 4xx after it landed.
    payout_answer_lost: StrictBool = False
    payout_resubmit_refused: StrictBool = False
    # --- statements (ops/sandbox/statements.py, ops/sandbox/quirks.py) -----------------------------
    # The fee the party charges, in basis points (60 = 0.60%), applied when a statement is written.
    fee_rate_bp: int = Field(default=60, ge=0, le=10_000)
    # WeChat: this merchant is an older one and gets the legacy 24-column trade bill.
    legacy_bill: StrictBool = False
    # The day's statement is not ready: the download API answers "Bill Creating".
    bill_creating: StrictBool = False
    # Knobs that make the party's records diverge from the platform's, each fixed on the payment,
    # refund or payout when it happens (like refund_failure), so a test sets one, acts, and resets it:
    # LONG: the customer's payment is never reported (no callback; query and close say unpaid).
    hide_payment: StrictBool = False
    # Cross-day: the payment or refund is left out of its day's statement and shows on the next day's.
    bill_next_day: StrictBool = False
    # AMOUNT_MISMATCH: the statement shows the payment with this much more (negative: less).
    bill_amount_delta_minor: int = Field(default=0, ge=-1_000_000_00, le=1_000_000_00)
    # DUPLICATE_PAYMENT: the channel charged the customer twice: two statement rows, two 交易号.
    duplicate_payment: StrictBool = False
    # STATUS_MISMATCH: the refund succeeds at the channel (and on its statement) while its callback is
    # never sent and queries keep answering PROCESSING.
    refund_stuck_processing: StrictBool = False
    # STATUS_MISMATCH (bank): the payout is PAID on the statement while its callback is never sent
    # and the batch query keeps answering PROCESSING (the platform ends up with it UNKNOWN).
    payout_paid_unreported: StrictBool = False


def merge(current: Faults, patch: Any) -> Faults:
    """Apply a partial update (any subset of the knobs) on top of the current knobs."""
    if not isinstance(patch, dict):
        raise invalid("fault update must be a JSON object")
    try:
        return Faults.model_validate({**current.model_dump(), **patch})
    except ValidationError as exc:
        raise invalid(describe(exc)) from None


def describe(exc: ValidationError) -> str:
    return "; ".join(f"{'.'.join(str(p) for p in e['loc']) or 'body'}: {e['msg']}" for e in exc.errors())


async def gate(party: str, faults: Faults, *, signed: bool) -> None:
    """What happens before a party even looks at a request: latency, outage, random server errors."""
    if faults.latency_ms:
        await asyncio.sleep(faults.latency_ms / 1000)
    if faults.down:
        raise SandboxError(503, "SYSTEM_ERROR", f"{party} is down (sandbox fault)")
    # Only signed (platform → party) calls are subject to error_rate: the customer's pay click is not
    # the platform's call and making it flaky would only make tests flaky.
    if signed and faults.error_rate and random.random() < faults.error_rate:
        raise SandboxError(500, "SYSTEM_ERROR", f"{party} had an internal error (sandbox fault)")
