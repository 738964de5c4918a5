"""Which party may tell the platform what (pure).

A valid signature proves who sent a notification, not that the sender may speak about its subject:
the bank must not complete a WeChat payment, Alipay must not complete a payment opened at WeChat, and
no party may report a success for another amount or currency than the platform asked for. A
notification that breaks one of these rules is refused (and kept for operators), never acted on.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

# The event kinds (the part of event_type before the dot) each party may send.
PARTY_EVENT_KINDS: dict[str, frozenset[str]] = {
    "wechat": frozenset({"payment", "refund"}),
    "alipay": frozenset({"payment", "refund"}),
    "bank": frozenset({"payout"}),
    "kyc": frozenset({"kyc"}),
    "esign": frozenset({"contract"}),
}

# Kinds that are about money the platform asked a party to move, and the payload field naming it.
MONEY_KINDS = {"payment": "out_trade_no", "refund": "out_refund_no", "payout": "payout_no"}
SUCCESS_EVENTS = frozenset({"payment.succeeded", "refund.succeeded", "payout.paid"})
SUCCESS_STATUSES = frozenset({"SUCCESS", "PAID"})


@dataclass(frozen=True)
class AskedFor:
    """What the platform asked for, from its own records: who it asked and for how much."""

    kind: str
    number: str
    parties: frozenset[str]
    amount_minor: int
    currency: str


def event_kind(event_type: str) -> str:
    return event_type.split(".", 1)[0]


def reports_success(event_type: str, payload: dict[str, Any]) -> bool:
    return event_type in SUCCESS_EVENTS or payload.get("status") in SUCCESS_STATUSES


def refusal(party: str, event_type: str, payload: dict[str, Any], asked: AskedFor | None) -> str | None:
    """Why a notification verified as coming from `party` must not be acted on; None when it may.
    `asked` is None when the platform has no record of the subject (then only the party rules apply)."""
    kind = event_kind(event_type)
    if kind not in PARTY_EVENT_KINDS.get(party, frozenset()):
        return f"{party} may not send {event_type!r} notifications"
    named = payload.get("party")
    if named is not None and named != party:
        return f"the notification names party {named!r} but is signed by {party!r}"
    if asked is None:
        return None
    if party not in asked.parties:
        return f"{asked.kind} {asked.number} was not sent to {party}"
    if reports_success(event_type, payload):
        reported = (payload.get("amount_minor"), payload.get("currency"))
        if type(reported[0]) is not int or reported != (asked.amount_minor, asked.currency):
            return (
                f"{party} reports {event_type} of {reported[0]} {reported[1]} for {asked.kind} {asked.number}, "
                f"but the platform asked for {asked.amount_minor} {asked.currency}"
            )
    return None
