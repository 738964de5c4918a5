"""HMAC-SHA256 signatures between the platform and outside parties, both directions.

The signed message binds the method, the path (with its query), the timestamp, a nonce and the raw
body. Binding the method and path stops a captured signature from being replayed against another
endpoint; the timestamp bounds how long a capture is worth anything; the nonce, remembered by the
receiver for that long, stops the very same request from being replayed inside the window.
Both the platform (its calls out, its callback receiver) and the sandbox (its gate, its notifier)
use these functions, so the two sides cannot drift apart.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import time
from collections.abc import Mapping
from urllib.parse import urlsplit

TIMESTAMP_HEADER = "X-Signature-Timestamp"
NONCE_HEADER = "X-Signature-Nonce"
SIGNATURE_HEADER = "X-Signature"

MAX_NONCE_LENGTH = 64


class SignatureError(Exception):
    """Why a signed message was refused (missing, malformed, stale, replayed or wrong signature)."""


def target_of(url_or_path: str) -> str:
    """What is signed of a URL: its path and query, as the receiver sees them (not host or scheme,
    which a proxy may rewrite)."""
    parts = urlsplit(url_or_path)
    path = parts.path or "/"
    return f"{path}?{parts.query}" if parts.query else path


def sign(secret: str, method: str, target: str, timestamp: int, nonce: str, body: bytes) -> str:
    head = f"{method.upper()}\n{target}\n{timestamp}\n{nonce}\n".encode()
    return hmac.new(secret.encode(), head + body, hashlib.sha256).hexdigest()


def signed_headers(
    secret: str, method: str, url: str, body: bytes, *, now: float | None = None, nonce: str | None = None
) -> dict[str, str]:
    """The headers that sign one request; every call gets a fresh nonce unless one is given (tests)."""
    ts = int(time.time() if now is None else now)
    nonce = nonce or secrets.token_hex(16)
    return {
        TIMESTAMP_HEADER: str(ts),
        NONCE_HEADER: nonce,
        SIGNATURE_HEADER: sign(secret, method, target_of(url), ts, nonce, body),
    }


def verify(
    secret: str,
    method: str,
    target: str,
    headers: Mapping[str, str],
    body: bytes,
    *,
    max_age_seconds: int,
    now: float | None = None,
) -> str:
    """Check a request's signature and freshness; answer its nonce, which the caller must not have
    seen from this party within ``max_age_seconds`` (see ``NonceCache``)."""
    timestamp, nonce, signature = (headers.get(h) for h in (TIMESTAMP_HEADER, NONCE_HEADER, SIGNATURE_HEADER))
    if not timestamp or not signature or not nonce:
        raise SignatureError("missing signature headers")
    if len(nonce) > MAX_NONCE_LENGTH:
        raise SignatureError("malformed signature nonce")
    try:
        ts = int(timestamp)
    except ValueError:
        raise SignatureError("malformed signature timestamp") from None
    current = time.time() if now is None else now
    if abs(current - ts) > max_age_seconds:
        raise SignatureError(f"signature timestamp is {int(current - ts)}s away from now (max {max_age_seconds}s)")
    if not hmac.compare_digest(sign(secret, method, target, ts, nonce, body), signature):
        raise SignatureError("signature does not match")
    return nonce


class NonceCache:
    """Nonces seen per party within the freshness window, for a receiver that runs as one process
    (the sandbox). The platform's API, which may run as many processes, keeps them in the database."""

    def __init__(self, max_age_seconds: int) -> None:
        self.max_age_seconds = max_age_seconds
        self._seen: dict[tuple[str, str], float] = {}

    def check_and_remember(self, party: str, nonce: str, *, now: float | None = None) -> None:
        current = time.time() if now is None else now
        # A nonce older than twice the window can no longer come with an acceptable timestamp.
        horizon = current - 2 * self.max_age_seconds
        if len(self._seen) > 1000:
            self._seen = {k: t for k, t in self._seen.items() if t >= horizon}
        seen_at = self._seen.get((party, nonce))
        if seen_at is not None and seen_at >= horizon:
            raise SignatureError("signature nonce was already used (replayed request)")
        self._seen[(party, nonce)] = current
