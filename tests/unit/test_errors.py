"""Unknown is not failed: Temporal timeouts and outages answer 503 with Retry-After, never 500."""

from __future__ import annotations

import httpx
import pytest
from fastapi import FastAPI
from temporalio.client import WorkflowUpdateRPCTimeoutOrCancelledError
from temporalio.service import RPCError, RPCStatusCode

from api import errors
from api.body_limit import BodyLimit

RAISES: dict[str, Exception] = {
    "deadline": RPCError("deadline exceeded", RPCStatusCode.DEADLINE_EXCEEDED, b""),
    "unavailable": RPCError("unavailable", RPCStatusCode.UNAVAILABLE, b""),
    "update-timeout": WorkflowUpdateRPCTimeoutOrCancelledError(),
    "timeout": TimeoutError(),
}


def app() -> FastAPI:
    a = FastAPI()
    errors.install(a)
    a.add_middleware(BodyLimit, prefix="/v1/callbacks", max_bytes=10)

    @a.get("/raise/{what}")
    async def boom(what: str) -> None:
        raise RAISES[what]

    @a.post("/v1/callbacks/x")
    async def callback() -> dict[str, str]:
        return {"ok": "yes"}

    return a


async def call(method: str, path: str, **kwargs: object) -> httpx.Response:
    transport = httpx.ASGITransport(app=app(), raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
        return await client.request(method, path, **kwargs)  # type: ignore[arg-type]


@pytest.mark.parametrize("what", sorted(RAISES))
async def test_a_temporal_timeout_or_outage_is_503_with_retry_after(what):
    r = await call("GET", f"/raise/{what}")
    assert r.status_code == 503, r.text
    assert r.headers["Retry-After"] and r.headers["content-type"].startswith("application/problem+json")
    assert "retry" in r.json()["detail"]


async def test_a_callback_body_over_the_limit_is_413_and_one_within_passes():
    assert (await call("POST", "/v1/callbacks/x", content=b"x" * 11)).status_code == 413
    assert (await call("POST", "/v1/callbacks/x", content=b"x" * 10)).json() == {"ok": "yes"}
