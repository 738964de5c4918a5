"""The platform's signed calls to outside parties, as the sandbox's gate checks them: a signature
binds method, path, timestamp, nonce and body, and a nonce is accepted once."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Iterator

import httpx
import pytest

from activities.parties.payment_channel import PaymentChannelClient
from domain.signing import signed_headers
from ops.sandbox.faults import PARTIES
from tests.support.sandbox_receiver import SandboxProcess, new_no

SECRETS = {party: f"signed-calls-{party}-secret" for party in PARTIES}


@pytest.fixture(scope="module")
def sandbox(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SandboxProcess]:
    where = tmp_path_factory.mktemp("sandbox-signing")
    proc = SandboxProcess(where / "sandbox.sqlite3", SECRETS, log=where / "sandbox.log").start()
    yield proc
    proc.stop()


@pytest.fixture
async def http(sandbox: SandboxProcess) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=sandbox.url, timeout=10) as client:
        yield client


def order_body(payment_no: str) -> bytes:
    return json.dumps(
        {
            "out_trade_no": payment_no,
            "amount_minor": 1000,
            "currency": "CNY",
            "description": "haircut",
            "notify_url": "http://127.0.0.1:9/cb",
        }
    ).encode()


def refused(resp: httpx.Response, says: str) -> bool:
    return resp.status_code == 401 and resp.json()["code"] == "SIGNATURE_INVALID" and says in resp.text


async def test_a_correctly_signed_call_passes_and_the_platform_client_signs_every_call(http, sandbox):
    payment_no = new_no("PAY")
    body = order_body(payment_no)
    ok = await http.post(
        "/wechat/v1/orders", content=body, headers=signed_headers(SECRETS["wechat"], "POST", "/wechat/v1/orders", body)
    )
    assert ok.status_code == 200, ok.text
    client = PaymentChannelClient(sandbox.url, SECRETS, http=http)
    # Two identical queries: each is signed afresh (its own nonce), so neither is taken for a replay.
    for _ in range(2):
        order = await client.query_order("wechat", payment_no)
        assert order is not None and order.out_trade_no == payment_no and order.status == "NOTPAY"


async def test_a_captured_signature_is_refused_on_another_path_or_method(http):
    payment_no, other_no = new_no("PAY"), new_no("PAY")
    for no in (payment_no, other_no):
        body = order_body(no)
        created = await http.post(
            "/wechat/v1/orders",
            content=body,
            headers=signed_headers(SECRETS["wechat"], "POST", "/wechat/v1/orders", body),
        )
        assert created.status_code == 200, created.text
    # A query the platform signed, captured and sent to close the order, or to look at another one:
    query = signed_headers(SECRETS["wechat"], "GET", f"/wechat/v1/orders/{payment_no}", b"")
    close = await http.post(f"/wechat/v1/orders/{payment_no}/close", content=b"", headers=query)
    assert refused(close, "does not match"), close.text
    other = await http.get(f"/wechat/v1/orders/{other_no}", headers=query)
    assert refused(other, "does not match"), other.text
    # ...or at another party that happens to use the same path layout:
    alipay = await http.get(f"/alipay/v1/orders/{payment_no}", headers=query)
    assert refused(alipay, "does not match"), alipay.text
    # The capture itself, where it was meant to go, still passes once.
    assert (await http.get(f"/wechat/v1/orders/{payment_no}", headers=query)).status_code == 200
    assert (await http.get(f"/wechat/v1/orders/{payment_no}")).status_code == 401


async def test_the_same_nonce_is_accepted_once(http):
    payment_no = new_no("PAY")
    body = order_body(payment_no)
    headers = signed_headers(SECRETS["wechat"], "POST", "/wechat/v1/orders", body)
    assert (await http.post("/wechat/v1/orders", content=body, headers=headers)).status_code == 200
    replay = await http.post("/wechat/v1/orders", content=body, headers=headers)
    assert refused(replay, "already used"), replay.text
    query = signed_headers(SECRETS["wechat"], "GET", f"/wechat/v1/orders/{payment_no}", b"")
    assert (await http.get(f"/wechat/v1/orders/{payment_no}", headers=query)).status_code == 200
    replayed_query = await http.get(f"/wechat/v1/orders/{payment_no}", headers=query)
    assert refused(replayed_query, "already used"), replayed_query.text
