"""Which flow a party's notification belongs to (workflow ids are business keys, ARCHITECTURE.md §3), and what
the platform asked that party for, from its own records, so the notification can be checked against it."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from db.models import Payment, PaymentAttempt, Refund, Withdrawal
from domain.callbacks import MONEY_KINDS, AskedFor, event_kind
from domain.withdrawals import BATCHER_WORKFLOW_ID

# The signal each flow exposes for notifications from outside.
NOTIFICATION_SIGNAL = "notification"


@dataclass(frozen=True)
class Route:
    workflow_id: str
    signal: str
    subject_ref: str


# KYC results and e-sign events belong to the merchant's onboarding; they name the merchant as merchant_ref.
ONBOARDING_PARTIES = ("kyc", "esign")


def route_for(party: str, event_type: str, payload: dict[str, Any]) -> Route | None:
    if party == "bank" and event_type.startswith("payout."):
        # Payout results belong to the batch flow following that batch; it tells each withdrawal.
        payout_no = payload.get("payout_no")
        if not isinstance(payout_no, str) or not payout_no or not isinstance(payload.get("batch_no"), str):
            return None
        return Route(workflow_id=BATCHER_WORKFLOW_ID, signal=NOTIFICATION_SIGNAL, subject_ref=payout_no)
    if party in ONBOARDING_PARTIES:
        merchant_id, ref = payload.get("merchant_ref"), payload.get("request_no")
        if not isinstance(merchant_id, str) or not merchant_id or not isinstance(ref, str):
            return None
        return Route(workflow_id=f"onboarding-{merchant_id}", signal=NOTIFICATION_SIGNAL, subject_ref=ref)
    kind = event_type.split(".", 1)[0]
    ref_field = {"payment": "out_trade_no", "refund": "out_refund_no"}.get(kind)
    ref = payload.get(ref_field) if ref_field else None
    if not isinstance(ref, str) or not ref:
        return None
    return Route(workflow_id=f"{kind}-{ref}", signal=NOTIFICATION_SIGNAL, subject_ref=ref)


def subject_number(event_type: str, payload: dict[str, Any]) -> tuple[str, str] | None:
    """(kind, the platform's number) of a notification about money the platform asked to move."""
    kind = event_kind(event_type)
    field = MONEY_KINDS.get(kind)
    number = payload.get(field) if field else None
    return (kind, number) if isinstance(number, str) and number else None


async def asked_for(session: AsyncSession, kind: str, number: str) -> AskedFor | None:
    """What the platform asked for under `number`, or None when it has no such record."""
    if kind == "payment":
        payment = await session.get(Payment, number)
        if payment is None:
            return None
        # Every channel an order was opened at may report it (a fail-over leaves several).
        channels = set(
            (await session.execute(select(PaymentAttempt.channel).where(PaymentAttempt.payment_no == number))).scalars()
        )
        if payment.channel:
            channels.add(payment.channel)
        return AskedFor(kind, number, frozenset(channels), payment.amount_minor, payment.currency)
    if kind == "refund":
        refund = await session.get(Refund, number)
        if refund is None:
            return None
        return AskedFor(kind, number, frozenset({refund.channel}), refund.amount_minor, refund.currency)
    if kind == "payout":
        withdrawal = await session.get(Withdrawal, number)
        if withdrawal is None:
            return None
        return AskedFor(kind, number, frozenset({"bank"}), withdrawal.amount_minor, withdrawal.currency)
    return None
