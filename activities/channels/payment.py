"""The platform's client for payment channels (wechat, alipay; the sandbox in dev and tests).

Every request carries the platform's own number (payment_no / refund_no) so the channel deduplicates
retries, and is HMAC-signed with that channel's shared secret over method, path, timestamp, nonce and raw body.
"""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any, Literal, TypeVar

import httpx
from pydantic import BaseModel, ConfigDict, ValidationError

from activities.channels.errors import ChannelRejected, ChannelUnavailable, OrderAlreadyPaid
from domain.signing import signed_headers

M = TypeVar("M", bound=BaseModel)

# Statuses where the channel is having a bad moment rather than refusing: the same request may succeed later.
RETRYABLE_STATUSES = frozenset({408, 425, 429})


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


class PaymentChannelClient:
    def __init__(
        self, base_url: str, secrets: dict[str, str], http: httpx.AsyncClient | None = None, timeout: float = 10
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self.secrets = secrets
        self._own_http = http is None
        self._http = http or httpx.AsyncClient(timeout=timeout)
        self.timeout = timeout

    async def aclose(self) -> None:
        if self._own_http:
            await self._http.aclose()

    async def __aenter__(self) -> PaymentChannelClient:
        return self

    async def __aexit__(self, *_: object) -> None:
        await self.aclose()

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
        return self._parse(ChannelOrder, self._ok(resp))

    async def query_order(self, channel: str, payment_no: str) -> ChannelOrder | None:
        resp = await self._call("GET", channel, f"/v1/orders/{payment_no}")
        if resp.status_code == 404:
            return None
        order = self._parse(ChannelOrder, self._ok(resp))
        if order.out_trade_no != payment_no:
            # An answer about another order says nothing about ours (the flow also compares amount and
            # currency with what it asked for before it believes a success): ask again later.
            raise ChannelUnavailable(f"{channel} answered a query for {payment_no} with {order.out_trade_no}")
        return order

    async def close_order(self, channel: str, payment_no: str) -> ChannelOrder:
        resp = await self._call("POST", channel, f"/v1/orders/{payment_no}/close", {})
        if resp.status_code == 409:
            payload = _json(resp)
            if payload.get("code") == "ORDER_PAID" and isinstance(payload.get("order"), dict):
                raise OrderAlreadyPaid(
                    self._parse(ChannelOrder, payload["order"]),
                    str(payload.get("message", "the order is already paid")),
                )
        return self._parse(ChannelOrder, self._ok(resp))

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
        return self._parse(ChannelRefund, self._ok(resp))

    async def query_refund(self, channel: str, refund_no: str) -> ChannelRefund | None:
        resp = await self._call("GET", channel, f"/v1/refunds/{refund_no}")
        if resp.status_code == 404:
            return None
        refund = self._parse(ChannelRefund, self._ok(resp))
        if refund.out_refund_no != refund_no:
            raise ChannelUnavailable(f"{channel} answered a query for {refund_no} with {refund.out_refund_no}")
        return refund

    # --- plumbing ---------------------------------------------------------------------------

    async def _call(
        self, method: str, channel: str, path: str, payload: dict[str, Any] | None = None
    ) -> httpx.Response:
        secret = self.secrets.get(channel)
        if not secret:
            # A configuration gap, not an outage: retrying cannot fix it.
            raise ChannelRejected("CHANNEL_NOT_CONFIGURED", f"no secret configured for channel {channel!r}")
        body = b"" if payload is None else json.dumps(payload, separators=(",", ":")).encode()
        url = f"{self.base_url}/{channel}{path}"
        headers = {"Content-Type": "application/json", **signed_headers(secret, method, url, body)}
        try:
            return await self._http.request(method, url, content=body, headers=headers, timeout=self.timeout)
        except httpx.HTTPError as exc:
            # Includes timeouts: the channel may or may not have acted, and the retry (same number)
            # is safe because the channel deduplicates on it.
            raise ChannelUnavailable(f"{channel} {method} {path}: {type(exc).__name__}: {exc}") from exc

    @staticmethod
    def _ok(resp: httpx.Response) -> dict[str, Any]:
        if resp.is_success:
            return _json(resp)
        payload = _json(resp)
        code = str(payload.get("code") or f"HTTP_{resp.status_code}")
        message = str(payload.get("message") or resp.text[:200] or resp.reason_phrase)
        if resp.status_code >= 500 or resp.status_code in RETRYABLE_STATUSES:
            raise ChannelUnavailable(f"{code}: {message}", status=resp.status_code, code=code)
        raise ChannelRejected(code, message, status=resp.status_code)

    @staticmethod
    def _parse(model: type[M], payload: dict[str, Any]) -> M:
        try:
            return model.model_validate(payload)
        except ValidationError as exc:
            # A 2xx we cannot read (a proxy page, a half-deployed channel) tells us nothing: retry later.
            raise ChannelUnavailable(f"unreadable {model.__name__} from channel: {exc}") from exc


def _json(resp: httpx.Response) -> dict[str, Any]:
    try:
        data = resp.json()
    except ValueError:
        return {}
    return data if isinstance(data, dict) else {}
