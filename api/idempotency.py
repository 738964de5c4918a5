"""The Idempotency-Key store as a dependency: `await idem.run(201, handler)` in a route.

The first response (2xx) is stored with a hash of the request; the same key and body replays it;
the same key with another body is a 422; a duplicate arriving while the first still runs is a 409.

The same key always leads to the same business object: the claim mints the business number
(`idem.number`) once, and every retry of the key re-uses it, so the flow id is the same and the start
attaches to the flow that exists. A handler calls `idem.sending()` just before it starts or asks a
flow; from then on a failure keeps the claim (a retry re-runs the handler with the same number), and
only a 4xx refusal before that point forgets the key. A handler that takes longer than
`api_flow_timeout_seconds` is answered 503 with Retry-After: unknown is not failed, the retry asks again.

`idem.run_checked(201, check, send)` splits a handler in two: `check(session)` runs inside the claim's own
transaction (reads that may refuse the request), `send(checked)` after it commits. A refusal in `check`
rolls the claim back with everything else: nothing was started, so a fresh retry is safe, and the request
cost one transaction instead of a claim, a check and a release.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
from collections.abc import Awaitable, Callable
from typing import Annotated, Any, TypeVar

from fastapi import Depends, Header, Request
from fastapi.encoders import jsonable_encoder
from fastapi.responses import JSONResponse
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from api.deps import SessionFactoryDep, SettingsDep, get_principal
from api.errors import ApiError, status_of
from db import idempotency as store
from db.api_keys import Principal
from db.engine import autocommit, unit_of_work
from domain.numbers import new_number
from domain.refusals import Refusal, Refused
from domain.settings import Settings

T = TypeVar("T")


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
        settings: Settings,
    ) -> None:
        self._factory = factory
        self._principal = principal
        self.key = key
        self._method = method
        self._path = path
        self._hash = request_hash
        self._settings = settings
        self._number: str | None = None
        self._sent = False

    @property
    def number(self) -> str:
        """The business number of this key (date + random), the same on every retry of the key."""
        if self._number is None:
            raise RuntimeError("idem.number is known only inside idem.run()")
        return self._number

    def sending(self) -> None:
        """Mark that a flow start or question is about to go out: the key is never forgotten after this."""
        self._sent = True

    async def run(self, status_code: int, handler: Callable[[], Awaitable[Any]]) -> JSONResponse:
        async def nothing(_: AsyncSession) -> None:
            return None

        return await self.run_checked(status_code, nothing, lambda _: handler())

    async def run_checked(
        self,
        status_code: int,
        check: Callable[[AsyncSession], Awaitable[T]],
        send: Callable[[T], Awaitable[Any]],
    ) -> JSONResponse:
        async with unit_of_work(self._factory) as session:
            claim = await store.claim(
                session,
                principal=str(self._principal.key_id),
                key=self.key,
                method=self._method,
                path=self._path,
                request_hash=self._hash,
                ttl_seconds=self._settings.idempotency_ttl_seconds,
                lease_seconds=self._settings.idempotency_lease_seconds,
                number=new_number(""),
            )
            if claim.state is store.ClaimState.NEW:
                self._number = claim.number
                # A refusal here rolls the claim back too (nothing was started): the key is forgotten.
                checked = await check(session)
        if claim.state is store.ClaimState.REPLAY:
            assert claim.status is not None
            return JSONResponse(claim.body, status_code=claim.status, headers={"Idempotent-Replayed": "true"})
        if claim.state is store.ClaimState.MISMATCH:
            raise ApiError(
                Refusal.IDEMPOTENCY_KEY_REUSED, f"Idempotency-Key {self.key!r} was already used for a different request"
            )
        if claim.state is store.ClaimState.IN_PROGRESS:
            raise ApiError(
                Refusal.IDEMPOTENCY_IN_PROGRESS,
                f"a request with Idempotency-Key {self.key!r} is still being processed; retry shortly",
            )
        assert claim.record_id is not None and claim.number is not None
        try:
            result = await asyncio.wait_for(send(checked), timeout=self._settings.api_flow_timeout_seconds)
        except TimeoutError:
            await self._after_failure(claim.record_id, refused_before_start=False)
            raise ApiError(
                Refusal.FLOW_NO_ANSWER,
                "the flow did not answer in time; it may have started: retry with the same Idempotency-Key",
            ) from None
        except Refused as err:
            await self._after_failure(
                claim.record_id, refused_before_start=not self._sent and status_of(err.code) < 500
            )
            raise
        except Exception:
            await self._after_failure(claim.record_id, refused_before_start=False)
            raise
        # A cancelled request (BaseException) keeps its claim under the lease: a retry takes it over later.
        body = jsonable_encoder(result)
        async with autocommit(self._factory) as conn:
            await store.complete(conn, claim.record_id, status_code, body)
        return JSONResponse(body, status_code=status_code)

    async def _after_failure(self, record_id: int, *, refused_before_start: bool) -> None:
        async with autocommit(self._factory) as conn:
            if refused_before_start:
                await store.release(conn, record_id)
            else:
                await store.unlease(conn, record_id)


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
            Refusal.IDEMPOTENCY_KEY_REQUIRED, "this request creates something: send an Idempotency-Key header"
        )
    if len(key) > 200:
        raise ApiError(Refusal.IDEMPOTENCY_KEY_INVALID, "Idempotency-Key must be at most 200 characters")
    body = await request.body()
    return Idempotency(
        factory,
        principal,
        key,
        request.method,
        request.url.path,
        request_hash(request.method, request.url.path, body),
        settings,
    )


IdempotencyDep = Annotated[Idempotency, Depends(idempotency)]
