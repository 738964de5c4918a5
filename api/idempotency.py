"""The Idempotency-Key store as a dependency: `await idem.run(201, handler)` in a route.

The first response (2xx) is stored with a hash of the request; the same key and body replays it;
the same key with another body is a 422; a duplicate arriving while the first still runs is a 409.
A request that fails releases its key so the client can retry it.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Awaitable, Callable
from typing import Annotated, Any

from fastapi import Depends, Header, Request
from fastapi.encoders import jsonable_encoder
from fastapi.responses import JSONResponse
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from api.deps import SessionFactoryDep, SettingsDep, get_principal
from api.errors import ApiError
from db import idempotency as store
from db.api_keys import Principal
from db.engine import unit_of_work


def request_hash(method: str, path: str, body: bytes) -> str:
    try:
        canonical = json.dumps(json.loads(body), sort_keys=True, separators=(",", ":")).encode() if body else b""
    except ValueError:
        canonical = body
    return hashlib.sha256(method.encode() + b" " + path.encode() + b"\n" + canonical).hexdigest()


class Idempotency:
    def __init__(
        self,
        factory: async_sessionmaker[AsyncSession],
        principal: Principal,
        key: str,
        method: str,
        path: str,
        request_hash: str,
        ttl_seconds: int,
    ) -> None:
        self._factory = factory
        self._principal = principal
        self.key = key
        self._method = method
        self._path = path
        self._hash = request_hash
        self._ttl = ttl_seconds

    async def run(self, status_code: int, handler: Callable[[], Awaitable[Any]]) -> JSONResponse:
        async with unit_of_work(self._factory) as session:
            claim = await store.claim(
                session,
                principal=str(self._principal.key_id),
                key=self.key,
                method=self._method,
                path=self._path,
                request_hash=self._hash,
                ttl_seconds=self._ttl,
            )
        if claim.state is store.ClaimState.REPLAY:
            assert claim.status is not None
            return JSONResponse(claim.body, status_code=claim.status, headers={"Idempotent-Replayed": "true"})
        if claim.state is store.ClaimState.MISMATCH:
            raise ApiError(
                422, "IDEMPOTENCY_KEY_REUSED", f"Idempotency-Key {self.key!r} was already used for a different request"
            )
        if claim.state is store.ClaimState.IN_PROGRESS:
            raise ApiError(
                409,
                "IDEMPOTENCY_IN_PROGRESS",
                f"a request with Idempotency-Key {self.key!r} is still being processed; retry shortly",
            )
        assert claim.record_id is not None
        try:
            body = jsonable_encoder(await handler())
        except BaseException:
            async with unit_of_work(self._factory) as session:
                await store.release(session, claim.record_id)
            raise
        async with unit_of_work(self._factory) as session:
            await store.complete(session, claim.record_id, status_code, body)
        return JSONResponse(body, status_code=status_code)


async def idempotency(
    request: Request,
    factory: SessionFactoryDep,
    settings: SettingsDep,
    principal: Annotated[Principal, Depends(get_principal)],
    idempotency_key: Annotated[str | None, Header(alias="Idempotency-Key")] = None,
) -> Idempotency:
    key = (idempotency_key or "").strip()
    if not key:
        raise ApiError(
            400, "IDEMPOTENCY_KEY_REQUIRED", "this request creates something: send an Idempotency-Key header"
        )
    if len(key) > 200:
        raise ApiError(400, "IDEMPOTENCY_KEY_INVALID", "Idempotency-Key must be at most 200 characters")
    body = await request.body()
    return Idempotency(
        factory,
        principal,
        key,
        request.method,
        request.url.path,
        request_hash(request.method, request.url.path, body),
        settings.idempotency_ttl_seconds,
    )


IdempotencyDep = Annotated[Idempotency, Depends(idempotency)]
