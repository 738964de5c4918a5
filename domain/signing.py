"""HMAC-SHA256 signatures between the platform and outside parties, both directions.

The signed message is ``f"{timestamp}.".encode() + body``: binding the timestamp stops a captured
request from being replayed later with a fresh timestamp.
"""

from __future__ import annotations

import hashlib
import hmac
import time

TIMESTAMP_HEADER = "X-Signature-Timestamp"
SIGNATURE_HEADER = "X-Signature"


class SignatureError(Exception):
    """Why a signed message was refused (missing, malformed, stale or wrong signature)."""


def sign(secret: str, timestamp: int, body: bytes) -> str:
    return hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256).hexdigest()


def signed_headers(secret: str, body: bytes, *, now: float | None = None) -> dict[str, str]:
    ts = int(time.time() if now is None else now)
    return {TIMESTAMP_HEADER: str(ts), SIGNATURE_HEADER: sign(secret, ts, body)}


def verify(
    secret: str,
    timestamp: str | None,
    signature: str | None,
    body: bytes,
    *,
    max_age_seconds: int,
    now: float | None = None,
) -> None:
    if not timestamp or not signature:
        raise SignatureError("missing signature headers")
    try:
        ts = int(timestamp)
    except ValueError:
        raise SignatureError("malformed signature timestamp") from None
    current = time.time() if now is None else now
    if abs(current - ts) > max_age_seconds:
        raise SignatureError(f"signature timestamp is {int(current - ts)}s away from now (max {max_age_seconds}s)")
    if not hmac.compare_digest(sign(secret, ts, body), signature):
        raise SignatureError("signature does not match")
