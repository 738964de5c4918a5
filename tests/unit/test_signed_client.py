"""The one signed client under every outside-party client (activities/parties/signed.py): what it signs,
and what each kind of answer means to the caller (retry, refusal, "no such thing"), against a stand-in
transport."""

from __future__ import annotations

import io
from collections.abc import Callable
from datetime import date

import httpx
import pytest

from activities.parties.bank import BankClient
from activities.parties.errors import PartyRejected, PartyUnavailable
from activities.parties.payment_channel import PaymentChannelClient
from activities.parties.statements import StatementClient
from domain.signing import SignatureError, verify

SECRETS = {"bank": "bank-secret", "wechat": "wechat-secret"}
Handler = Callable[[httpx.Request], httpx.Response]


def http(handler: Handler) -> httpx.AsyncClient:
    return httpx.AsyncClient(transport=httpx.MockTransport(handler))


def answering(status: int, body: object = None, text: str | None = None) -> Handler:
    def handler(_: httpx.Request) -> httpx.Response:
        if text is not None:
            return httpx.Response(status, text=text)
        return httpx.Response(status, json=body)

    return handler


async def test_a_call_is_signed_with_the_partys_own_secret() -> None:
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(200, json={"items": []})

    bank = BankClient("http://parties", SECRETS, http(handler))
    assert await bank.query_batch("PB1") == []
    (request,) = seen
    assert request.url.path == "/bank/v1/payout-batches/PB1"
    target, body = request.url.raw_path.decode(), request.content
    verify("bank-secret", "GET", target, request.headers, body, max_age_seconds=60)
    with pytest.raises(SignatureError):
        verify("wechat-secret", "GET", target, request.headers, body, max_age_seconds=60)


@pytest.mark.parametrize("status", [500, 502, 503, 408, 425, 429])
async def test_outages_and_throttling_are_retried(status: int) -> None:
    bank = BankClient("http://parties", SECRETS, http(answering(status, {"code": "BUSY", "message": "later"})))
    with pytest.raises(PartyUnavailable) as err:
        await bank.query_batch("PB1")
    assert (err.value.status, err.value.code) == (status, "BUSY")


async def test_a_4xx_is_a_definite_refusal_with_the_partys_code() -> None:
    bank = BankClient("http://parties", SECRETS, http(answering(400, {"code": "BAD_ACCOUNT", "message": "no"})))
    with pytest.raises(PartyRejected) as err:
        await bank.query_batch("PB1")
    assert (err.value.code, err.value.message, err.value.status) == ("BAD_ACCOUNT", "no", 400)


async def test_a_4xx_without_a_body_is_named_by_its_status() -> None:
    channel = PaymentChannelClient("http://parties", SECRETS, http(answering(403, text="")))
    with pytest.raises(PartyRejected) as err:
        await channel.create_refund("wechat", "RF1", "PAY1", 100, "r", "http://cb")
    assert err.value.code == "HTTP_403"


async def test_404_is_no_such_thing_not_an_error() -> None:
    bank = BankClient("http://parties", SECRETS, http(answering(404, {"code": "NOT_FOUND"})))
    assert await bank.query_batch("PB1") is None
    channel = PaymentChannelClient("http://parties", SECRETS, http(answering(404, {"code": "NOT_FOUND"})))
    assert await channel.query_refund("wechat", "RF1") is None


async def test_no_answer_at_all_is_an_unknown_to_retry() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        raise httpx.ReadTimeout("no answer", request=request)

    channel = PaymentChannelClient("http://parties", SECRETS, http(handler))
    with pytest.raises(PartyUnavailable, match="ReadTimeout"):
        await channel.query_order("wechat", "PAY1")


async def test_a_party_without_a_secret_is_refused_before_anything_is_sent() -> None:
    sent: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        sent.append(request)
        return httpx.Response(200, json={})

    channel = PaymentChannelClient("http://parties", SECRETS, http(handler))
    with pytest.raises(PartyRejected) as err:
        await channel.query_order("alipay", "PAY1")
    assert err.value.code == "PARTY_NOT_CONFIGURED"
    assert sent == []


async def test_a_statement_not_ready_yet_is_retried_and_no_bill_is_an_empty_day() -> None:
    day, spool = date(2026, 12, 1), io.BytesIO()
    creating = StatementClient("http://parties", SECRETS, http(answering(400, {"code": "STATEMENT_CREATING"})))
    with pytest.raises(PartyUnavailable):
        await creating.download("bank", day, spool)
    empty = StatementClient("http://parties", SECRETS, http(answering(404, {"code": "NO_STATEMENT_EXIST"})))
    assert await empty.download("bank", day, spool) is False
    refused = StatementClient("http://parties", SECRETS, http(answering(400, {"code": "BAD_DATE"})))
    with pytest.raises(PartyRejected):
        await refused.download("bank", day, spool)
    assert spool.getvalue() == b""  # nothing but a statement is ever written into the spool
    served = StatementClient("http://parties", SECRETS, http(lambda _: httpx.Response(200, content=b"a,b\n1,2\n")))
    assert await served.download("bank", day, spool) is True
    assert spool.getvalue() == b"a,b\n1,2\n"
