"""Every workflow and activity the workers serve, registered in one place."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import httpx
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from activities.channels import ChannelActivities
from activities.discrepancies import DiscrepancyActivities
from activities.onboarding import OnboardingActivities, VerificationActivities
from activities.orders import OrderActivities
from activities.parties.bank import BankClient
from activities.parties.esign import ESignClient
from activities.parties.kyc import KycClient
from activities.parties.payment_channel import PaymentChannelClient
from activities.parties.statements import StatementClient
from activities.payments import PaymentActivities
from activities.payouts import PayoutActivities
from activities.recon import ReconActivities
from activities.refunds import RefundActivities
from activities.settlement import SettlementActivities
from activities.statements import StatementActivities
from activities.withdrawals import WithdrawalActivities
from domain.crypto import FieldCipher
from domain.settings import Settings
from workflows.discrepancy import DiscrepancyWorkflow
from workflows.onboarding import MerchantOnboardingWorkflow
from workflows.order import OrderWorkflow
from workflows.payment import PaymentWorkflow
from workflows.payout_batch import PayoutBatchWorkflow
from workflows.recon_daily import ReconDailyWorkflow
from workflows.reconciliation import ReconciliationWorkflow
from workflows.refund import RefundWorkflow
from workflows.settlement import SettlementWorkflow
from workflows.statement import StatementWorkflow
from workflows.withdrawal import WithdrawalWorkflow

WORKFLOWS: list[type] = [
    OrderWorkflow,
    PaymentWorkflow,
    RefundWorkflow,
    MerchantOnboardingWorkflow,
    SettlementWorkflow,
    StatementWorkflow,
    WithdrawalWorkflow,
    PayoutBatchWorkflow,
    ReconciliationWorkflow,
    DiscrepancyWorkflow,
    ReconDailyWorkflow,
]


def activities(
    settings: Settings, sessions: async_sessionmaker[AsyncSession], http: httpx.AsyncClient
) -> list[Callable[..., Any]]:
    orders = OrderActivities(sessions)
    payments = PaymentActivities(sessions)
    refunds = RefundActivities(sessions)
    settlement = SettlementActivities(sessions)
    statements = StatementActivities(sessions)
    channels = ChannelActivities(PaymentChannelClient(settings.sandbox_url, settings.party_secrets, http))
    onboarding = OnboardingActivities(sessions)
    verification = VerificationActivities(
        sessions,
        FieldCipher(settings.field_encryption_key),
        KycClient(settings.sandbox_url, settings.party_secrets, http),
        ESignClient(settings.sandbox_url, settings.party_secrets, http),
    )
    withdrawals = WithdrawalActivities(sessions)
    payouts = PayoutActivities(
        sessions,
        FieldCipher(settings.field_encryption_key),
        BankClient(settings.sandbox_url, settings.party_secrets, http),
    )
    recon = ReconActivities(
        sessions,
        StatementClient(settings.sandbox_url, settings.party_secrets, http),
        settings.recon_fee_rate_bp,
        settings.recon_staging_keep_days,
    )
    discrepancies = DiscrepancyActivities(sessions)
    return [
        orders.create,
        orders.transition,
        orders.dispatch,
        orders.mark_settleable,
        payments.record_attempt,
        payments.capture,
        payments.finish,
        refunds.open,
        refunds.record_attempt,
        refunds.escalate,
        refunds.complete,
        channels.create_order,
        channels.query_order,
        channels.close_order,
        channels.create_refund,
        channels.query_refund,
        onboarding.submit,
        onboarding.transition,
        verification.submit_check,
        verification.query_check,
        verification.create_contract,
        verification.query_contract,
        settlement.open_cycle,
        settlement.build,
        settlement.claim,
        settlement.aggregate,
        settlement.await_decided,
        settlement.verify,
        settlement.auto_approve,
        settlement.pending_page,
        statements.approve,
        statements.reject,
        statements.adjust,
        settlement.close_cycle,
        withdrawals.open,
        withdrawals.decide,
        withdrawals.record_outcome,
        withdrawals.compare_late_result,
        payouts.claim,
        payouts.submit,
        payouts.query,
        payouts.ask,
        payouts.open_batches,
        payouts.still_open,
        payouts.close,
        recon.open,
        recon.fetch,
        recon.match,
        recon.fail,
        discrepancies.facts,
        discrepancies.record,
        discrepancies.to_finance,
        discrepancies.clear,
        discrepancies.run_flows,
        discrepancies.book_fees,
    ]
