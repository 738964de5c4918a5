"""How long a flow may rest in a stage before operators should look at it (pure)."""

from __future__ import annotations

from domain.settings import Settings


def stage_slas(settings: Settings) -> dict[str, int]:
    """Seconds per stage; a stage not named here may last `settings.stuck_after_seconds`.

    Waiting stages get their business deadline plus a margin: a flow still there after its own
    timer should have moved it on is stuck; stages that wait for people get their reminder period."""
    margin = 300
    week = settings.after_sale_window_seconds + margin
    return {
        "AWAITING_PAYMENT": settings.payment_timeout_seconds + margin,
        "AWAITING_MERCHANT": settings.merchant_accept_timeout_seconds + margin,
        "DISPATCHING": settings.dispatch_accept_timeout_seconds * settings.dispatch_max_attempts + margin,
        "IN_SERVICE": 2 * 24 * 3600,
        "DELIVERED": settings.auto_confirm_seconds + margin,
        "AFTER_SALE": week,
        "PROCESSING": settings.refund_poll_max_seconds + margin,
        "AWAITING_FINANCE_APPROVAL": settings.approval_remind_seconds,
        "IN_REVIEW": settings.review_escalate_seconds,
        "SECOND_REVIEW": settings.review_escalate_seconds,
        "CHANGES_REQUESTED": settings.resubmit_window_seconds + margin,
        "CONTRACTING": settings.contract_sign_window_seconds + margin,
        "AWAITING_DEPOSIT": settings.payment_timeout_seconds + margin,
        "QUEUED": settings.payout_batch_seconds + margin,
        "SUBMITTED": settings.payout_unknown_escalate_seconds + margin,
        # A payout the bank never answered waits on finance: stuck from the first day.
        "UNKNOWN": settings.approval_remind_seconds,
    }


def sla_for(stage: str, slas: dict[str, int], default: int) -> int:
    return slas.get(stage, default)
