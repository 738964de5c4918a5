"""The gate every platform → party call passes, as a real party applies it: fault knobs (latency,
outage, random errors), then the HMAC signature over method, path, timestamp, nonce and raw body, and
the nonce against the ones already seen (a captured request replayed as is, or to another path, is
refused); and parsing the body it carried."""

from __future__ import annotations

from typing import TypeVar

from fastapi import Request
from pydantic import BaseModel, ValidationError

from domain.signing import NonceCache, SignatureError, verify
from ops.sandbox.context import SandboxContext, context
from ops.sandbox.errors import SandboxError, invalid
from ops.sandbox.faults import Faults, describe, gate

SIGNATURE_MAX_AGE_SECONDS = 300
M = TypeVar("M", bound=BaseModel)
# The sandbox is one process: nonces it has accepted are remembered here for the signature's lifetime.
_NONCES = NonceCache(SIGNATURE_MAX_AGE_SECONDS)


async def verified(request: Request, party: str, faults: Faults | None = None) -> tuple[SandboxContext, Faults, bytes]:
    ctx = context(request)
    faults = faults if faults is not None else ctx.store.get_faults(party)
    await gate(party, faults, signed=True)
    body = await request.body()
    secret = ctx.secrets.get(party)
    try:
        if not secret:
            raise SignatureError(f"no secret is configured for {party}")
        target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
        nonce = verify(secret, request.method, target, request.headers, body, max_age_seconds=SIGNATURE_MAX_AGE_SECONDS)
        _NONCES.check_and_remember(party, nonce)
    except SignatureError as exc:
        raise SandboxError(401, "SIGNATURE_INVALID", str(exc)) from None
    return ctx, faults, body


def parse(model: type[M], body: bytes) -> M:
    try:
        return model.model_validate_json(body)
    except ValidationError as exc:
        raise invalid(describe(exc)) from None
