"""Every business number the back office mints, in one place (ARCHITECTURE.md §3).

A number the API mints is date + 48 random bits (`new_number`), claimed once with the request's
Idempotency-Key, so every retry of the key names the same order, refund, withdrawal or merchant. A
number a flow mints for what it starts itself is derived from the flow's own number (or, for a payout
batch, from workflow time and a workflow UUID), so a replay or a repeat derives the same one.
"""

from __future__ import annotations

import secrets
from datetime import UTC, datetime


def new_number(prefix: str) -> str:
    """A business number: prefix, date, 48 random bits (unique without a round trip to the database)."""
    return f"{prefix}{datetime.now(UTC):%Y%m%d}{secrets.token_hex(6).upper()}"


# --- from a number claimed with an Idempotency-Key (api/) ----------------------------------------
def order_no(number: str) -> str:
    return f"ORD{number}"


def payment_no(number: str) -> str:
    return f"PAY{number}"


def refund_no(number: str) -> str:
    return f"RF{number}"


def withdrawal_id(number: str) -> str:
    return f"WD{number}"


def merchant_id(number: str) -> str:
    return f"m-{number.lower()}"


def commission_rule_id(number: str) -> str:
    return f"cr-{number.lower()}"


def campaign_id(number: str) -> str:
    return f"cmp-{number.lower()}"


def coupon_id(number: str) -> str:
    return f"CPN{number}"


# --- derived by a flow (workflows/): deterministic, so a replay or a repeat asks for the same one ----
def kyc_request_no(merchant_id: str, version: int, check: str) -> str:
    """One KYC check of one application version (the provider deduplicates on it)."""
    return f"KYC-{merchant_id}-v{version}-{check}"


def contract_request_no(merchant_id: str, round_: int) -> str:
    """One e-contract round of a merchant (the provider returns the same contract for a repeat)."""
    return f"CT-{merchant_id}-{round_}"


def cancellation_refund_no(order_no: str, *, late: bool) -> str:
    """The refund of a cancelled order: `L` when it was paid after the cancellation, `C` otherwise."""
    return f"RF{order_no.removeprefix('ORD')}{'L' if late else 'C'}"


def duplicate_refund_no(payment_no: str, channel: str) -> str:
    """The refund of a second payment of the same order through another channel."""
    return f"RF{payment_no.removeprefix('PAY')}{channel.upper()[:2]}"


def deposit_payment_no(merchant_id: str, attempt: int) -> str:
    """The payment of a merchant's security deposit, one per attempt."""
    return f"DEP{merchant_id.removeprefix('m-').upper()}{attempt}"


def payout_batch_no(at: datetime, unique_hex: str) -> str:
    """A payout batch: when it was claimed and 32 bits of a workflow UUID."""
    return f"PB{at:%Y%m%d%H%M%S}{unique_hex[:8].upper()}"
