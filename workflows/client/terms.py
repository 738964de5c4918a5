"""What a starter copies from settings into a flow's input when it starts one."""

from __future__ import annotations

from domain.merchants import OnboardingTerms
from domain.orders import OrderTerms
from domain.recon.runs import DiscrepancyTerms
from domain.refunds import RefundTerms
from domain.settings import Settings
from domain.settlement import SettlementTerms
from domain.withdrawals import PayoutTerms, WithdrawalTerms


def notify_url(settings: Settings) -> str:
    return f"{settings.public_base_url.rstrip('/')}/v1/callbacks"


def refund_terms(settings: Settings) -> RefundTerms:
    return RefundTerms(
        poll_initial_seconds=settings.refund_poll_initial_seconds,
        poll_max_seconds=settings.refund_poll_max_seconds,
        approval_remind_seconds=settings.approval_remind_seconds,
        notify_url=notify_url(settings),
        manual_bank=settings.manual_refund_bank,
    )


def order_terms(settings: Settings) -> OrderTerms:
    return OrderTerms(
        payment_timeout_seconds=settings.payment_timeout_seconds,
        payment_poll_initial_seconds=settings.payment_poll_initial_seconds,
        payment_poll_max_seconds=settings.payment_poll_max_seconds,
        merchant_accept_timeout_seconds=settings.merchant_accept_timeout_seconds,
        dispatch_accept_timeout_seconds=settings.dispatch_accept_timeout_seconds,
        dispatch_max_attempts=settings.dispatch_max_attempts,
        auto_confirm_seconds=settings.auto_confirm_seconds,
        after_sale_window_seconds=settings.after_sale_window_seconds,
        channel_weights=settings.channel_weights,
        notify_url=notify_url(settings),
        refund=refund_terms(settings),
    )


def withdrawal_terms(settings: Settings) -> WithdrawalTerms:
    return WithdrawalTerms(
        daily_limit_minor=settings.withdrawal_daily_limit_minor,
        approval_min_minor=settings.withdrawal_approval_min_minor,
        approval_remind_seconds=settings.approval_remind_seconds,
        # Payouts leave from the same platform bank account as manual refund transfers.
        payout_bank=settings.manual_refund_bank,
    )


def payout_terms(settings: Settings) -> PayoutTerms:
    return PayoutTerms(
        batch_seconds=settings.payout_batch_seconds,
        max_items=settings.payout_batch_max_items,
        unknown_escalate_seconds=settings.payout_unknown_escalate_seconds,
        notify_url=f"{notify_url(settings)}/bank",
    )


def onboarding_terms(settings: Settings) -> OnboardingTerms:
    return OnboardingTerms(
        review_remind_seconds=settings.review_remind_seconds,
        review_escalate_seconds=settings.review_escalate_seconds,
        resubmit_window_seconds=settings.resubmit_window_seconds,
        contract_sign_window_seconds=settings.contract_sign_window_seconds,
        kyc_poll_seconds=settings.kyc_poll_seconds,
        notify_url=notify_url(settings),
        payment_timeout_seconds=settings.payment_timeout_seconds,
        payment_poll_initial_seconds=settings.payment_poll_initial_seconds,
        payment_poll_max_seconds=settings.payment_poll_max_seconds,
        channel_weights=settings.channel_weights,
        refund=refund_terms(settings),
    )


def settlement_terms(settings: Settings) -> SettlementTerms:
    return SettlementTerms(
        auto_approve_max_minor=settings.settlement_auto_approve_max_minor,
        remind_seconds=settings.settlement_remind_seconds,
        page_size=settings.settlement_page_size,
    )


def discrepancy_terms(settings: Settings) -> DiscrepancyTerms:
    return DiscrepancyTerms(
        short_hold_seconds=settings.recon_short_hold_seconds,
        remind_seconds=settings.approval_remind_seconds,
        refund=refund_terms(settings),
    )
