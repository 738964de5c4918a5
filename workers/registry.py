"""Every workflow and activity the workers serve, registered in one place."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import httpx
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from activities.channel_calls import ChannelActivities
from activities.channels.payment import PaymentChannelClient
from activities.ledger import LedgerActivities
from activities.orders import OrderActivities
from activities.payments import PaymentActivities
from activities.refunds import RefundActivities
from domain.settings import Settings
from workflows.order import OrderWorkflow
from workflows.payment import PaymentWorkflow
from workflows.refund import RefundWorkflow

WORKFLOWS: list[type] = [OrderWorkflow, PaymentWorkflow, RefundWorkflow]


def activities(
    settings: Settings, sessions: async_sessionmaker[AsyncSession], http: httpx.AsyncClient
) -> list[Callable[..., Any]]:
    ledger = LedgerActivities(sessions)
    orders = OrderActivities(sessions)
    payments = PaymentActivities(sessions)
    refunds = RefundActivities(sessions)
    channels = ChannelActivities(PaymentChannelClient(settings.sandbox_url, settings.party_secrets, http))
    return [
        ledger.post,
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
    ]
