"""Activities that call a payment channel (create, query and close an order; create and query a refund):
one request each, carrying the platform's payment or refund number, a party's answer turned into the
activity's result or failure (`activities/refusals.py: party_failure`)."""

from __future__ import annotations

from temporalio import activity
from temporalio.exceptions import ApplicationError

from activities.parties.errors import OrderAlreadyPaid, PartyError, PartyRejected
from activities.parties.payment_channel import ChannelOrder, PaymentChannelClient
from activities.refusals import party_failure
from domain.payments import ChannelOrderRequest, ChannelOrderView
from domain.refunds import ChannelRefundRequest, ChannelRefundView
from domain.refusals import Refusal


def _view(channel: str, order: ChannelOrder) -> ChannelOrderView:
    return ChannelOrderView(
        channel=channel,
        status=order.status,
        pay_url=order.pay_url,
        channel_order_id=order.channel_order_id,
        channel_txn_id=order.channel_txn_id,
        amount_minor=order.amount_minor,
        currency=order.currency,
    )


def _translate(exc: Exception) -> ApplicationError:
    return party_failure(exc, "channel", Refusal.CHANNEL_REJECTED, Refusal.CHANNEL_UNAVAILABLE)


class ChannelActivities:
    def __init__(self, client: PaymentChannelClient) -> None:
        self._client = client

    @activity.defn(name="channel.create_order")
    async def create_order(self, req: ChannelOrderRequest) -> ChannelOrderView:
        try:
            order = await self._client.create_order(
                req.channel, req.payment_no, req.amount_minor, req.currency, req.description, req.notify_url
            )
        except PartyError as exc:
            raise _translate(exc) from exc
        return _view(req.channel, order)

    @activity.defn(name="channel.query_order")
    async def query_order(self, channel: str, payment_no: str) -> ChannelOrderView:
        try:
            order = await self._client.query_order(channel, payment_no)
        except PartyError as exc:
            raise _translate(exc) from exc
        return _view(channel, order) if order else ChannelOrderView(channel=channel, status="MISSING")

    @activity.defn(name="channel.close_order")
    async def close_order(self, channel: str, payment_no: str) -> ChannelOrderView:
        """Close; if the customer paid first, answer the paid order instead (the caller captures it)."""
        try:
            order = await self._client.close_order(channel, payment_no)
        except OrderAlreadyPaid as paid:
            return _view(channel, paid.order)
        except PartyError as exc:
            if isinstance(exc, PartyRejected) and exc.code == "ORDER_NOT_EXIST":
                return ChannelOrderView(channel=channel, status="MISSING")
            raise _translate(exc) from exc
        return _view(channel, order)

    @activity.defn(name="channel.create_refund")
    async def create_refund(self, req: ChannelRefundRequest) -> ChannelRefundView:
        try:
            refund = await self._client.create_refund(
                req.channel, req.refund_no, req.payment_no, req.amount_minor, req.reason, req.notify_url
            )
        except PartyError as exc:
            raise _translate(exc) from exc
        return ChannelRefundView(status=refund.status, failure_reason=refund.failure_reason)

    @activity.defn(name="channel.query_refund")
    async def query_refund(self, channel: str, refund_no: str) -> ChannelRefundView:
        try:
            refund = await self._client.query_refund(channel, refund_no)
        except PartyError as exc:
            raise _translate(exc) from exc
        if refund is None:
            return ChannelRefundView(status="MISSING")
        return ChannelRefundView(status=refund.status, failure_reason=refund.failure_reason)
