"""Signed JSON calls to an outside party (KYC, e-sign), classified the way every channel client does:
``ChannelUnavailable`` to retry (5xx, 429, timeouts), ``ChannelRejected`` for a definite refusal."""

from __future__ import annotations

import json
from typing import Any

import httpx

from activities.channels.errors import ChannelRejected, ChannelUnavailable
from activities.channels.payment import RETRYABLE_STATUSES, _json
from domain.signing import signed_headers


class SignedPartyClient:
    party = ""

    def __init__(self, base_url: str, secrets: dict[str, str], http: httpx.AsyncClient, timeout: float = 10) -> None:
        self.base_url = base_url.rstrip("/")
        self.secrets = secrets
        self._http = http
        self.timeout = timeout

    async def call(self, method: str, path: str, payload: dict[str, Any] | None = None) -> dict[str, Any] | None:
        """The party's JSON answer; None for a 404 (it has no such thing)."""
        secret = self.secrets.get(self.party)
        if not secret:
            raise ChannelRejected("PARTY_NOT_CONFIGURED", f"no secret configured for {self.party!r}")
        body = b"" if payload is None else json.dumps(payload, separators=(",", ":")).encode()
        url = f"{self.base_url}/{self.party}{path}"
        headers = {"Content-Type": "application/json", **signed_headers(secret, method, url, body)}
        try:
            resp = await self._http.request(method, url, content=body, headers=headers, timeout=self.timeout)
        except httpx.HTTPError as exc:
            raise ChannelUnavailable(f"{self.party} {method} {path}: {type(exc).__name__}: {exc}") from exc
        data = _json(resp)
        if resp.is_success:
            return data
        if resp.status_code == 404:
            return None
        code = str(data.get("code") or f"HTTP_{resp.status_code}")
        message = str(data.get("message") or resp.text[:200])
        if resp.status_code >= 500 or resp.status_code in RETRYABLE_STATUSES:
            raise ChannelUnavailable(f"{code}: {message}", status=resp.status_code, code=code)
        raise ChannelRejected(code, message, status=resp.status_code)
