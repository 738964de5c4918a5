"""Which flow a party's notification belongs to (workflow ids are business keys, ARCHITECTURE.md §3), and what
the platform asked that party for, from its own records, so the notification can be checked against it."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from db.models import Payment, PaymentAttempt, Refund, Withdrawal
from domain.callbacks import MONEY_KINDS, AskedFor, event_kind
from workflows.ids import (
    PAYOUT_BATCHER_WORKFLOW_ID,
    merchant_onboarding_workflow_id,
    payment_workflow_id,
    refund_workflow_id,
)
from workflows.onboarding import MerchantOnboardingWorkflow
from workflows.payment import PaymentWorkflow
from workflows.payout_batch import PayoutBatchWorkflow
from workflows.refund import RefundWorkflow

# The signal a flow exposes for notifications from outside (each flow's `notification` handler).
NotificationSignal = Callable[[Any, dict[str, object]], None]

# Channel notifications by kind: the field naming the platform's number, the flow following that
# number and its signal.
_CHANNEL_FLOWS: dict[str, tuple[str, Callable[[str], str], NotificationSignal]] = {
    "payment": ("out_trade_no", payment_workflow_id, PaymentWorkflow.notification),
    "refund": ("out_refund_no", refund_workflow_id, RefundWorkflow.notification),
}


@dataclass(frozen=True)
class Route:
    workflow_id: str
    signal: NotificationSignal
    subject_ref: str


# KYC results and e-sign events belong to the merchant's onboarding; they name the merchant as merchant_ref.
ONBOARDING_PARTIES = ("kyc", "esign")


def route_for(party: str, event_type: str, payload: dict[str, Any]) -> Route | None:
    if party == "bank" and event_type.startswith("payout."):
        # Payout results belong to the batch flow following that batch; it tells each withdrawal.
        payout_no = payload.get("payout_no")
        if not isinstance(payout_no, str) or not payout_no or not isinstance(payload.get("batch_no"), str):
            return None
        return Route(PAYOUT_BATCHER_WORKFLOW_ID, PayoutBatchWorkflow.notification, subject_ref=payout_no)
    if party in ONBOARDING_PARTIES:
        merchant_id, ref = payload.get("merchant_ref"), payload.get("request_no")
        if not isinstance(merchant_id, str) or not merchant_id or not isinstance(ref, str):
            return None
        return Route(
            merchant_onboarding_workflow_id(merchant_id), MerchantOnboardingWorkflow.notification, subject_ref=ref
        )
    flow = _CHANNEL_FLOWS.get(event_type.split(".", 1)[0])
    if flow is None:
        return None
    ref_field, workflow_id, signal = flow
    ref = payload.get(ref_field)
    if not isinstance(ref, str) or not ref:
        return None
    return Route(workflow_id(ref), signal, subject_ref=ref)


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
