"""Which flow a party's notification belongs to: workflow ids are business keys (DESIGN §5)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

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
