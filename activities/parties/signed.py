"""Signed HTTP to an outside party, the one way every party client talks (payment channels, bank, KYC,
e-sign, statement downloads).

Each request is HMAC-signed with the party's shared secret over method, path, timestamp, nonce and raw
body (`domain.signing`), sent with the client's timeout, and its answer classified once:
``PartyUnavailable`` to retry (transport errors and timeouts, 5xx, 408/425/429), ``PartyRejected`` for
a definite refusal (any other 4xx, with the party's code). A timeout is an unknown, not a failure: the
retry carries the same platform number and the party deduplicates on it.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from typing import Any, BinaryIO

import httpx

from activities.parties.errors import PartyError, PartyRejected, PartyUnavailable
from domain.signing import signed_headers

# Statuses where the party is having a bad moment rather than refusing: the same request may succeed later.
RETRYABLE_STATUSES = frozenset({408, 425, 429})
STREAM_CHUNK = 1 << 20


class SignedPartyClient:
    party = ""  # a single-party client's name: its path prefix at base_url and the key of its secret

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

    async def __aenter__(self) -> SignedPartyClient:
        return self

    async def __aexit__(self, *_: object) -> None:
        await self.aclose()

    async def call(self, method: str, path: str, payload: dict[str, Any] | None = None) -> dict[str, Any] | None:
        """This party's JSON answer; None for a 404 (it has no such thing)."""
        resp = await self.send(method, f"/{self.party}{path}", payload, signer=self.party)
        return None if resp.status_code == 404 else self.answer(resp)

    async def send(
        self,
        method: str,
        target: str,
        payload: dict[str, Any] | None = None,
        *,
        signer: str | None,
        out: BinaryIO | None = None,
    ) -> httpx.Response:
        """`target` (path and query) at base_url, signed with the secret of `signer` (None: unsigned). With
        `out`, a successful body is streamed into it a chunk at a time (a statement file is never held
        whole in memory) and the answer's own body is left unread."""
        headers = {"Content-Type": "application/json"}
        body = b"" if payload is None else json.dumps(payload, separators=(",", ":")).encode()
        url = self.base_url + target
        if signer is not None:
            secret = self.secrets.get(signer)
            if not secret:  # a configuration gap, not an outage: retrying cannot fix it
                raise PartyRejected("PARTY_NOT_CONFIGURED", f"no secret configured for {signer!r}")
            headers |= signed_headers(secret, method, url, body)
        try:
            if out is None:
                return await self._http.request(method, url, content=body, headers=headers, timeout=self.timeout)
            async with self._http.stream(method, url, content=body, headers=headers, timeout=self.timeout) as resp:
                if resp.is_success:
                    async for chunk in resp.aiter_bytes(STREAM_CHUNK):
                        out.write(chunk)
                else:
                    await resp.aread()
                return resp
        except httpx.HTTPError as exc:
            raise PartyUnavailable(f"{method} {target}: {type(exc).__name__}: {exc}") from exc

    @staticmethod
    def answer(resp: httpx.Response) -> dict[str, Any]:
        """The JSON of a 2xx answer; otherwise raises what the answer means (`failure`)."""
        if resp.is_success:
            return json_of(resp)
        raise SignedPartyClient.failure(resp)

    @staticmethod
    def failure(resp: httpx.Response, *, retry_codes: Iterable[str] = ()) -> PartyError:
        """What a non-2xx answer means: an outage to retry (5xx, 408/425/429, or one of the party's own
        codes for "not yet" in `retry_codes`), or a definite refusal with the party's code."""
        code, message = refusal_of(resp)
        if resp.status_code >= 500 or resp.status_code in RETRYABLE_STATUSES or code in retry_codes:
            return PartyUnavailable(f"{code}: {message}", status=resp.status_code, code=code)
        return PartyRejected(code, message, status=resp.status_code)


def refusal_of(resp: httpx.Response) -> tuple[str, str]:
    """The party's code and message of a non-2xx answer."""
    data = json_of(resp)
    code = str(data.get("code") or f"HTTP_{resp.status_code}")
    return code, str(data.get("message") or resp.text[:200] or resp.reason_phrase)


def json_of(resp: httpx.Response) -> dict[str, Any]:
    try:
        data = resp.json()
    except ValueError:
        return {}
    return data if isinstance(data, dict) else {}
