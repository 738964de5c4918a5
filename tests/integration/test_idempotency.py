"""The Idempotency-Key dependency on routes of a throwaway app, then on the real create routes."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator

import httpx
import pytest
from fastapi import Depends, FastAPI
from pydantic import BaseModel, Field
from sqlalchemy import func, select

from api import errors
from api.deps import require
from api.idempotency import IdempotencyDep, request_hash
from api.temporal_handle import TemporalHandle
from db import idempotency as store
from db.api_keys import issue_key, resolve_key
from db.engine import unit_of_work
from db.models import IdempotencyRecord, MerchantApplication, Order, Withdrawal
from domain.access import Role
from domain.accounts import merchant_account
from domain.refusals import Refusal
from domain.settings import Settings
from tests.support.sandbox_receiver import eventually
from tests.support.shop import application_body, bearer, payee, refused_with, withdraw
from workflows.ids import withdrawal_workflow_id

CALLS: list[int] = []
NUMBERS: list[str] = []


class Thing(BaseModel):
    amount_minor: int = Field(gt=0)


@pytest.fixture(scope="module")
async def client(sessions) -> AsyncIterator[httpx.AsyncClient]:  # type: ignore[no-untyped-def]
    app = FastAPI()
    errors.install(app)
    app.state.session_factory = sessions
    app.state.settings = Settings(
        idempotency_ttl_seconds=3600, idempotency_lease_seconds=30, api_flow_timeout_seconds=1
    )
    app.state.temporal = TemporalHandle(app.state.settings)

    @app.post("/things", dependencies=[Depends(require(Role.SERVICE))])
    async def create(body: Thing, idem: IdempotencyDep):  # type: ignore[no-untyped-def]
        async def handler() -> dict[str, object]:
            CALLS.append(body.amount_minor)
            await asyncio.sleep(0.3)
            if body.amount_minor == 13:
                raise errors.ApiError(Refusal.NOT_ACCEPTABLE, "thirteen is refused")  # a 409
            return {"thing_id": uuid.uuid4().hex, "amount_minor": body.amount_minor}

        return await idem.run(201, handler)

    @app.post("/numbered", dependencies=[Depends(require(Role.SERVICE))])
    async def numbered(body: Thing, idem: IdempotencyDep):  # type: ignore[no-untyped-def]
        """Answers the key's business number; its first attempt fails after the start was "sent"
        (amount 21: an error, 22: no answer in time), as a flow call that went out and came back badly."""

        async def handler() -> dict[str, object]:
            NUMBERS.append(idem.number)
            idem.sending()
            if len(NUMBERS) == 1 and body.amount_minor == 21:
                raise RuntimeError("the answer was lost")
            if len(NUMBERS) == 1 and body.amount_minor == 22:
                await asyncio.sleep(5)
            return {"number": idem.number}

        return await idem.run(201, handler)

    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app, raise_app_exceptions=False), base_url="http://t"
    ) as c:
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
    assert "different request" in refused_with(r, 422, "IDEMPOTENCY_KEY_REUSED")["detail"]


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
    assert "Idempotency-Key" in refused_with(r, 400, "IDEMPOTENCY_KEY_REQUIRED")["detail"]
    assert CALLS == []


@pytest.mark.parametrize(("amount", "status"), [(21, 500), (22, 503)])
async def test_a_failure_after_the_start_was_sent_keeps_the_key_and_its_number(client, keys, amount, status):
    h = {**bearer(keys[Role.SERVICE]), "Idempotency-Key": uuid.uuid4().hex}
    NUMBERS.clear()
    first = await client.post("/numbered", json={"amount_minor": amount}, headers=h)
    assert first.status_code == status, first.text
    if status == 503:
        assert first.headers["Retry-After"] and "same Idempotency-Key" in first.json()["detail"]
    retry = await client.post("/numbered", json={"amount_minor": amount}, headers=h)
    assert retry.status_code == 201, retry.text
    assert len(NUMBERS) == 2 and NUMBERS[0] == NUMBERS[1] == retry.json()["number"]
    replay = await client.post("/numbered", json={"amount_minor": amount}, headers=h)
    assert replay.json() == retry.json() and replay.headers["Idempotent-Replayed"] == "true"


async def claim_as_a_crashed_api(sessions, service_key: str, key: str, lease_seconds: int) -> str:  # type: ignore[no-untyped-def]
    """Claim `key` as an API process would that then died mid-request (the claim stays unfinished)."""
    async with unit_of_work(sessions) as session:
        principal = await resolve_key(session, service_key)
        assert principal is not None
        claim = await store.claim(
            session,
            principal=str(principal.key_id),
            key=key,
            method="POST",
            path="/numbered",
            request_hash=request_hash("POST", "/numbered", b'{"amount_minor": 24}'),
            ttl_seconds=3600,
            lease_seconds=lease_seconds,
            number=f"CRASHED{uuid.uuid4().hex[:8].upper()}",
        )
    assert claim.state is store.ClaimState.NEW and claim.number
    return claim.number


async def test_an_unfinished_claim_is_409_while_leased_and_taken_over_with_its_number_after(client, keys, sessions):
    leased = uuid.uuid4().hex
    await claim_as_a_crashed_api(sessions, keys[Role.SERVICE], leased, lease_seconds=3600)
    h = {**bearer(keys[Role.SERVICE]), "Idempotency-Key": leased}
    r = await client.post("/numbered", json={"amount_minor": 24}, headers=h)
    assert r.status_code == 409 and r.json()["code"] == "IDEMPOTENCY_IN_PROGRESS"

    expired = uuid.uuid4().hex
    number = await claim_as_a_crashed_api(sessions, keys[Role.SERVICE], expired, lease_seconds=0)
    h = {**bearer(keys[Role.SERVICE]), "Idempotency-Key": expired}
    NUMBERS.clear()
    both = await asyncio.gather(*(client.post("/numbered", json={"amount_minor": 24}, headers=h) for _ in range(2)))
    assert {r.status_code for r in both} <= {201, 409} and 201 in {r.status_code for r in both}
    assert all(r.json() == {"number": number} for r in both if r.status_code == 201)
    assert NUMBERS == [number]  # one retry took it over, not both


async def test_an_expired_key_is_forgotten_and_claimed_afresh(sessions):  # type: ignore[no-untyped-def]
    """The claim replaces an expired record in the same statement that inserts a new one: the key starts
    a new request (any body, a new number), and that request's answer is the one replayed from then on."""
    key = uuid.uuid4().hex

    async def claim(number: str, ttl_seconds: int, body: bytes) -> store.Claim:
        async with unit_of_work(sessions) as session:
            return await store.claim(
                session,
                principal="expiry",
                key=key,
                method="POST",
                path="/numbered",
                request_hash=request_hash("POST", "/numbered", body),
                ttl_seconds=ttl_seconds,
                lease_seconds=60,
                number=number,
            )

    async def complete(record_id: int | None, number: str) -> None:
        assert record_id is not None
        async with unit_of_work(sessions) as session:
            await store.complete(session, record_id, 201, {"number": number})

    first = await claim("OLD", -1, b'{"amount_minor": 1}')  # expired as soon as it is made
    assert first.state is store.ClaimState.NEW and first.number == "OLD"
    await complete(first.record_id, "OLD")
    again = await claim("NEW", 3600, b'{"amount_minor": 2}')  # another body is no mismatch: the old key is gone
    assert again.state is store.ClaimState.NEW and again.number == "NEW"
    assert (await claim("OTHER", 3600, b'{"amount_minor": 2}')).state is store.ClaimState.IN_PROGRESS
    await complete(again.record_id, "NEW")
    replay = await claim("OTHER", 3600, b'{"amount_minor": 2}')
    assert replay.state is store.ClaimState.REPLAY and replay.body == {"number": "NEW"}


# ---- the real create routes -------------------------------------------------------------------
async def orders_of(shop, customer_id: str) -> list[str]:  # type: ignore[no-untyped-def]
    async with unit_of_work(shop.sessions) as session:
        rows = await session.execute(select(Order.order_no).where(Order.customer_id == customer_id))
        return [r[0] for r in rows]


async def test_concurrent_same_key_orders_give_one_order(shop):
    merchant_id = await shop.merchant()
    customer, key = f"c-{uuid.uuid4().hex[:12]}", uuid.uuid4().hex
    results = await asyncio.gather(*(shop.place(merchant_id, key=key, customer_id=customer) for _ in range(4)))
    assert {r.status_code for r in results} <= {201, 409} and 201 in {r.status_code for r in results}
    order_nos = {r.json()["order_no"] for r in results if r.status_code == 201}
    assert len(order_nos) == 1
    again = await shop.place(merchant_id, key=key, customer_id=customer)
    assert again.status_code == 201 and again.json()["order_no"] in order_nos
    await shop.reaches(again.json()["order_no"], "AWAITING_PAYMENT")
    assert await orders_of(shop, customer) == list(order_nos)


async def test_a_retry_after_the_order_flow_did_not_answer_is_the_same_order(shop):
    """The start is sent while no worker runs: the flow exists but cannot answer, so the API answers 503.
    The retry with the same key (worker back) must attach to that flow, not place a second order."""
    merchant_id = await shop.merchant()
    customer, key = f"c-{uuid.uuid4().hex[:12]}", uuid.uuid4().hex
    shop.services.children["worker"].kill()
    try:
        first = await shop.place(merchant_id, key=key, customer_id=customer)
    finally:
        shop.services.start("worker")
    assert first.status_code == 503, first.text
    assert first.headers["content-type"].startswith("application/problem+json") and first.headers["Retry-After"]
    async with unit_of_work(shop.sessions) as session:
        claim = (await session.execute(select(IdempotencyRecord).where(IdempotencyRecord.key == key))).scalar_one()
    assert claim.number and claim.response_status is None  # kept, with the number the flow was started with
    retry = await shop.place(merchant_id, key=key, customer_id=customer)
    assert retry.status_code == 201, retry.text
    order_no = retry.json()["order_no"]
    assert order_no == f"ORD{claim.number}"
    await shop.reaches(order_no, "AWAITING_PAYMENT")
    assert await orders_of(shop, customer) == [order_no]


async def test_concurrent_same_key_applications_give_one_merchant(shop):
    body = application_body()
    h = {**shop.as_(Role.SERVICE), "Idempotency-Key": uuid.uuid4().hex}
    results = await asyncio.gather(*(shop.api.post("/v1/merchants", json=body, headers=h) for _ in range(3)))
    assert {r.status_code for r in results} <= {201, 409} and 201 in {r.status_code for r in results}
    ids = {r.json()["merchant_id"] for r in results if r.status_code == 201}
    again = await shop.api.post("/v1/merchants", json=body, headers=h)
    assert len(ids) == 1 and again.json()["merchant_id"] in ids
    async with unit_of_work(shop.sessions) as session:
        stored = (
            await session.execute(
                select(func.count(func.distinct(MerchantApplication.merchant_id))).where(
                    MerchantApplication.bank_account_last4 == body["bank_account_no"][-4:],
                    MerchantApplication.legal_person_id_last4 == body["legal_person_id_no"][-4:],
                )
            )
        ).scalar_one()
    assert stored == 1


async def withdrawals_of(shop, merchant_id: str) -> list[str]:  # type: ignore[no-untyped-def]
    async with unit_of_work(shop.sessions) as session:
        rows = await session.execute(select(Withdrawal.withdrawal_id).where(Withdrawal.merchant_id == merchant_id))
        return [r[0] for r in rows]


async def test_concurrent_same_key_withdrawals_freeze_once(shop):
    m, key = await payee(shop, 10_000), uuid.uuid4().hex
    results = await asyncio.gather(*(withdraw(shop, m, 3_000, key=key) for _ in range(3)))
    assert {r.status_code for r in results} <= {202, 409} and 202 in {r.status_code for r in results}
    ids = {r.json()["withdrawal_id"] for r in results if r.status_code == 202}
    assert len(ids) == 1 and await withdrawals_of(shop, m) == list(ids)
    assert await shop.balance(merchant_account(m, "available")) == 7_000


async def unanswered_withdrawal(shop, amount: int) -> tuple[str, str]:  # type: ignore[no-untyped-def]
    """A withdrawal requested while no worker runs: its flow is started but cannot answer (503). The
    worker is back when this returns. Answers (merchant id, the Idempotency-Key used)."""
    m, key = await payee(shop, 10_000), uuid.uuid4().hex
    shop.services.children["worker"].kill()
    try:
        first = await withdraw(shop, m, amount, key=key)
    finally:
        shop.services.start("worker")
    assert first.status_code == 503, first.text
    return m, key


async def test_a_withdrawal_retried_after_its_flow_did_not_answer_freezes_once(shop):
    m, key = await unanswered_withdrawal(shop, 4_000)
    retry = await withdraw(shop, m, 4_000, key=key)
    assert retry.status_code == 202, retry.text
    async with unit_of_work(shop.sessions) as session:
        claim = (await session.execute(select(IdempotencyRecord).where(IdempotencyRecord.key == key))).scalar_one()
    assert retry.json()["withdrawal_id"] == f"WD{claim.number}"
    assert await withdrawals_of(shop, m) == [retry.json()["withdrawal_id"]]
    assert await shop.balance(merchant_account(m, "available")) == 6_000


async def test_a_retry_after_the_flow_finished_gets_the_first_answer_and_starts_nothing(shop, temporal):
    """The client never got its answer (503) and retries only after the withdrawal was paid: the retry
    answers the same withdrawal from the finished flow; the flow is not started a second time."""
    m, key = await unanswered_withdrawal(shop, 2_500)
    [wid] = await eventually(lambda: withdrawals_of(shop, m), within=30)
    handle = temporal.get_workflow_handle(withdrawal_workflow_id(wid))
    await asyncio.wait_for(handle.result(), timeout=60)  # paid and finished
    finished_run = (await handle.describe()).run_id
    retry = await withdraw(shop, m, 2_500, key=key)
    assert retry.status_code == 202, retry.text
    assert retry.json()["withdrawal_id"] == wid
    assert (await handle.describe()).run_id == finished_run  # the latest run is still the finished one
    assert await withdrawals_of(shop, m) == [wid]
    assert await shop.balance(merchant_account(m, "available")) == 7_500
    assert await shop.balance(merchant_account(m, "withdrawing")) == 0
