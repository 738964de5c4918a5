"""The reusable Idempotency-Key dependency, on a route of a throwaway app against the real database."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator

import httpx
import pytest
from fastapi import Depends, FastAPI
from pydantic import BaseModel, Field

from api import errors
from api.deps import require
from api.idempotency import IdempotencyDep
from api.temporal_handle import TemporalHandle
from db.api_keys import issue_key
from db.engine import unit_of_work
from domain.access import Role
from domain.settings import Settings
from tests.support.shop import bearer

CALLS: list[int] = []


class Thing(BaseModel):
    amount_minor: int = Field(gt=0)


@pytest.fixture(scope="module")
async def client(sessions) -> AsyncIterator[httpx.AsyncClient]:  # type: ignore[no-untyped-def]
    app = FastAPI()
    errors.install(app)
    app.state.session_factory = sessions
    app.state.settings = Settings(idempotency_ttl_seconds=3600)
    app.state.temporal = TemporalHandle(app.state.settings)

    @app.post("/things", dependencies=[Depends(require(Role.SERVICE))])
    async def create(body: Thing, idem: IdempotencyDep):  # type: ignore[no-untyped-def]
        async def handler() -> dict[str, object]:
            CALLS.append(body.amount_minor)
            await asyncio.sleep(0.3)
            if body.amount_minor == 13:
                raise errors.ApiError(409, "UNLUCKY", "thirteen is refused")
            return {"thing_id": uuid.uuid4().hex, "amount_minor": body.amount_minor}

        return await idem.run(201, handler)

    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t") as c:
        yield c


async def test_same_key_and_body_replays_the_first_response(client, keys):
    h = {**bearer(keys[Role.SERVICE]), "Idempotency-Key": uuid.uuid4().hex}
    CALLS.clear()
    first = await client.post("/things", json={"amount_minor": 5}, headers=h)
    second = await client.post("/things", json={"amount_minor": 5}, headers=h)
    assert first.status_code == second.status_code == 201
    assert first.json() == second.json() and second.headers["Idempotent-Replayed"] == "true"
    assert CALLS == [5]


async def test_same_key_different_body_is_422(client, keys):
    h = {**bearer(keys[Role.SERVICE]), "Idempotency-Key": uuid.uuid4().hex}
    assert (await client.post("/things", json={"amount_minor": 5}, headers=h)).status_code == 201
    r = await client.post("/things", json={"amount_minor": 6}, headers=h)
    assert r.status_code == 422 and "different request" in r.json()["detail"]


async def test_a_concurrent_duplicate_gets_409_and_the_work_runs_once(client, keys):
    h = {**bearer(keys[Role.SERVICE]), "Idempotency-Key": uuid.uuid4().hex}
    CALLS.clear()
    a, b = await asyncio.gather(
        client.post("/things", json={"amount_minor": 7}, headers=h),
        client.post("/things", json={"amount_minor": 7}, headers=h),
    )
    assert sorted([a.status_code, b.status_code]) == [201, 409]
    assert CALLS == [7]


async def test_keys_are_scoped_per_caller(client, keys, sessions):
    async with unit_of_work(sessions) as session:
        _, other_service = await issue_key(session, role=Role.SERVICE, name="other-app")
    key = uuid.uuid4().hex
    a = await client.post(
        "/things", json={"amount_minor": 8}, headers={**bearer(keys[Role.SERVICE]), "Idempotency-Key": key}
    )
    b = await client.post(
        "/things", json={"amount_minor": 9}, headers={**bearer(other_service), "Idempotency-Key": key}
    )
    assert a.status_code == b.status_code == 201
    assert b.json()["amount_minor"] == 9 and "Idempotent-Replayed" not in b.headers


async def test_a_failed_request_releases_its_key(client, keys):
    h = {**bearer(keys[Role.SERVICE]), "Idempotency-Key": uuid.uuid4().hex}
    CALLS.clear()
    assert (await client.post("/things", json={"amount_minor": 13}, headers=h)).status_code == 409
    assert (await client.post("/things", json={"amount_minor": 13}, headers=h)).status_code == 409
    assert CALLS == [13, 13]


async def test_missing_key_is_400_and_nothing_runs(client, keys):
    CALLS.clear()
    r = await client.post("/things", json={"amount_minor": 5}, headers=bearer(keys[Role.SERVICE]))
    assert r.status_code == 400 and "Idempotency-Key" in r.json()["detail"]
    assert CALLS == []
