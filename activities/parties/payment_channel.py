"""The platform's client for payment channels (wechat, alipay; the sandbox in dev and tests).

Every request carries the platform's own number (payment_no / refund_no) so the channel deduplicates
retries; signing, timeouts and the meaning of an error are `activities/parties/signed.py`'s.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal, TypeVar

import httpx
from pydantic import BaseModel, ConfigDict, ValidationError

from activities.parties.errors import OrderAlreadyPaid, PartyUnavailable
from activities.parties.signed import SignedPartyClient, json_of

M = TypeVar("M", bound=BaseModel)


class ChannelOrder(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True)

    channel_order_id: str
    out_trade_no: str
    status: Literal["NOTPAY", "SUCCESS", "CLOSED"]
    amount_minor: int
    currency: str
    pay_url: str | None = None
    channel_txn_id: str | None = None
    paid_at: datetime | None = None
    refunded_minor: int = 0

    @property
    def paid(self) -> bool:
        return self.status == "SUCCESS"


class ChannelRefund(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True)

    refund_id: str
    out_refund_no: str
    status: Literal["PROCESSING", "SUCCESS", "FAILED"]
    out_trade_no: str | None = None
    amount_minor: int | None = None
    failure_reason: str | None = None
    finished_at: datetime | None = None


class PaymentChannelClient(SignedPartyClient):
    """One client for every payment channel: the channel is each call's path prefix and signing key."""

    # --- orders -----------------------------------------------------------------------------

    async def create_order(
        self, channel: str, payment_no: str, amount_minor: int, currency: str, description: str, notify_url: str
    ) -> ChannelOrder:
        resp = await self._call(
            "POST",
            channel,
            "/v1/orders",
            {
                "out_trade_no": payment_no,
                "amount_minor": amount_minor,
                "currency": currency,
                "description": description,
                "notify_url": notify_url,
            },
        )
        return self._parse(ChannelOrder, self.answer(resp))

    async def query_order(self, channel: str, payment_no: str) -> ChannelOrder | None:
        resp = await self._call("GET", channel, f"/v1/orders/{payment_no}")
        if resp.status_code == 404:
            return None
        order = self._parse(ChannelOrder, self.answer(resp))
        if order.out_trade_no != payment_no:
            # An answer about another order says nothing about ours (the flow also compares amount and
            # currency with what it asked for before it believes a success): ask again later.
            raise PartyUnavailable(f"{channel} answered a query for {payment_no} with {order.out_trade_no}")
        return order

    async def close_order(self, channel: str, payment_no: str) -> ChannelOrder:
        resp = await self._call("POST", channel, f"/v1/orders/{payment_no}/close", {})
        if resp.status_code == 409:
            payload = json_of(resp)
            if payload.get("code") == "ORDER_PAID" and isinstance(payload.get("order"), dict):
                raise OrderAlreadyPaid(
                    self._parse(ChannelOrder, payload["order"]),
                    str(payload.get("message", "the order is already paid")),
                )
        return self._parse(ChannelOrder, self.answer(resp))

    # --- refunds ----------------------------------------------------------------------------

    async def create_refund(
        self, channel: str, refund_no: str, payment_no: str, amount_minor: int, reason: str, notify_url: str
    ) -> ChannelRefund:
        resp = await self._call(
            "POST",
            channel,
            "/v1/refunds",
            {
                "out_refund_no": refund_no,
                "out_trade_no": payment_no,
                "amount_minor": amount_minor,
                "reason": reason,
                "notify_url": notify_url,
            },
        )
        return self._parse(ChannelRefund, self.answer(resp))

    async def query_refund(self, channel: str, refund_no: str) -> ChannelRefund | None:
        resp = await self._call("GET", channel, f"/v1/refunds/{refund_no}")
        if resp.status_code == 404:
            return None
        refund = self._parse(ChannelRefund, self.answer(resp))
        if refund.out_refund_no != refund_no:
            raise PartyUnavailable(f"{channel} answered a query for {refund_no} with {refund.out_refund_no}")
        return refund

    # --- plumbing ---------------------------------------------------------------------------

    async def _call(
        self, method: str, channel: str, path: str, payload: dict[str, Any] | None = None
    ) -> httpx.Response:
        return await self.send(method, f"/{channel}{path}", payload, signer=channel)

    @staticmethod
    def _parse(model: type[M], payload: dict[str, Any]) -> M:
        try:
            return model.model_validate(payload)
        except ValidationError as exc:
            # A 2xx we cannot read (a proxy page, a half-deployed channel) tells us nothing: retry later.
            raise PartyUnavailable(f"unreadable {model.__name__} from channel: {exc}") from exc
