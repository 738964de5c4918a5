"""Which flow a party's notification belongs to: workflow ids are business keys (DESIGN §5)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

# The signal each flow exposes for notifications from outside.
NOTIFICATION_SIGNAL = "notification"


@dataclass(frozen=True)
class Route:
    workflow_id: str
    signal: str
    subject_ref: str


def route_for(party: str, event_type: str, payload: dict[str, Any]) -> Route | None:
    kind = event_type.split(".", 1)[0]
    ref_field = {"payment": "out_trade_no", "refund": "out_refund_no"}.get(kind)
    ref = payload.get(ref_field) if ref_field else None
    if not isinstance(ref, str) or not ref:
        return None
    return Route(workflow_id=f"{kind}-{ref}", signal=NOTIFICATION_SIGNAL, subject_ref=ref)
