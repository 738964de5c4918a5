"""The sandbox behaves like a payment channel, seen through the platform's own client.

The sandbox runs as a real subprocess (so restarts are real) with callback backoff shrunk to 50 ms;
a threaded receiver plays the platform's callback endpoint.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Iterator

import httpx
import pytest

from activities.parties.errors import OrderAlreadyPaid, PartyRejected, PartyUnavailable
from activities.parties.payment_channel import PaymentChannelClient
from domain.signing import signed_headers, verify
from ops.sandbox.faults import PARTIES
from tests.support.sandbox_receiver import CallbackReceiver, SandboxProcess, SandboxWorld, new_no

SECRETS = {party: f"test-{party}-secret" for party in PARTIES}


@pytest.fixture(scope="module")
def receiver() -> Iterator[CallbackReceiver]:
    rec = CallbackReceiver().start()
    yield rec
    rec.stop()


@pytest.fixture(scope="module")
def sandbox(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SandboxProcess]:
    where = tmp_path_factory.mktemp("sandbox")
    proc = SandboxProcess(where / "sandbox.sqlite3", SECRETS, log=where / "sandbox.log").start()
    yield proc
    proc.stop()


@pytest.fixture
async def w(sandbox: SandboxProcess, receiver: CallbackReceiver) -> AsyncIterator[SandboxWorld]:
    async with httpx.AsyncClient(base_url=sandbox.url, timeout=10) as http:
        yield SandboxWorld(sandbox, http, PaymentChannelClient(sandbox.url, SECRETS, http=http), receiver)
        for party in PARTIES:  # each test starts from a healthy outside world
            await http.delete(f"/_sandbox/faults/{party}")


async def test_create_order_is_idempotent_on_payment_number(w: SandboxWorld) -> None:
    order, path = await w.new_order("alipay")
    assert order.status == "NOTPAY" and order.amount_minor == 1000
    assert order.pay_url and order.pay_url.endswith(f"/alipay/pay/{order.out_trade_no}")
    url = w.receiver.url(path)
    again = await w.client.create_order("alipay", order.out_trade_no, 1000, "CNY", "haircut", url)
    assert again.channel_order_id == order.channel_order_id
    with pytest.raises(PartyRejected) as err:
        await w.client.create_order("alipay", order.out_trade_no, 999, "CNY", "haircut", url)
    assert err.value.code == "OUT_TRADE_NO_CONFLICT" and err.value.status == 409
    assert (await w.inspect_order("alipay", order.out_trade_no))["create_calls"] == 2
    assert await w.client.query_order("alipay", new_no("NOPE")) is None
    # The same number on the other channel is a different order: channels don't share books.
    assert await w.client.query_order("wechat", order.out_trade_no) is None


async def test_pay_sends_one_signed_callback(w: SandboxWorld) -> None:
    order, path = await w.new_order()
    first = await w.pay(order)
    assert first.status_code == 200 and first.json()["status"] == "SUCCESS"
    [delivery] = await w.receiver.wait_for(path, 1)
    verify(SECRETS["wechat"], "POST", path, delivery.headers, delivery.body, max_age_seconds=300)
    event = delivery.json()
    assert event["event_type"] == "payment.succeeded" and event["party"] == "wechat"
    assert event["out_trade_no"] == order.out_trade_no and event["amount_minor"] == 1000
    assert event["status"] == "SUCCESS" and event["channel_txn_id"] and event["event_id"]
    queried = await w.client.query_order("wechat", order.out_trade_no)
    assert queried is not None and queried.paid and queried.channel_txn_id == event["channel_txn_id"]
    # Paying twice (a double click) changes nothing and sends nothing new.
    second = await w.pay(order)
    assert second.status_code == 200 and second.json()["channel_txn_id"] == event["channel_txn_id"]
    assert len(await w.notes(order.out_trade_no)) == 1


async def test_close_after_pay_is_refused_with_the_paid_order(w: SandboxWorld) -> None:
    order = await w.paid_order()
    with pytest.raises(OrderAlreadyPaid) as err:
        await w.client.close_order("wechat", order.out_trade_no)
    assert err.value.order.status == "SUCCESS" and err.value.order.channel_txn_id


async def test_close_before_pay_then_pay_is_refused(w: SandboxWorld) -> None:
    order, _ = await w.new_order()
    assert (await w.client.close_order("wechat", order.out_trade_no)).status == "CLOSED"
    assert (await w.client.close_order("wechat", order.out_trade_no)).status == "CLOSED"  # repeat is fine
    resp = await w.pay(order)
    assert resp.status_code == 409 and resp.json()["code"] == "ORDER_CLOSED"
    inspected = await w.inspect_order("wechat", order.out_trade_no)
    assert inspected["status"] == "CLOSED" and inspected["close_calls"] == 2
    with pytest.raises(PartyRejected) as err:
        await w.client.close_order("wechat", new_no("NOPE"))
    assert err.value.status == 404 and err.value.code == "ORDER_NOT_EXIST"


async def test_callback_is_retried_until_the_receiver_accepts(w: SandboxWorld) -> None:
    order, path = await w.new_order()
    w.receiver.fail_next(path, 2)
    await w.pay(order)
    deliveries = await w.receiver.wait_for(path, 3)
    assert len({d.json()["event_id"] for d in deliveries}) == 1
    [row] = await w.delivered(order.out_trade_no)
    assert row["attempts"] == 3 and row["deliveries"] == 1


async def test_dropped_callbacks_never_arrive_but_query_shows_success(w: SandboxWorld) -> None:
    await w.set_faults("wechat", drop_callbacks=True)
    order, path = await w.new_order()
    await w.pay(order)
    queried = await w.client.query_order("wechat", order.out_trade_no)
    assert queried is not None and queried.status == "SUCCESS"
    [row] = await w.notes(order.out_trade_no)
    assert row["dropped"] and not row["pending"]
    await asyncio.sleep(0.3)  # give a wrongly scheduled delivery the chance to show up
    assert w.receiver.deliveries(path) == []
    # Redelivery un-drops it: how a test stages a very late callback.
    redeliver = await w.http.post(f"/_sandbox/wechat/notifications/{row['event_id']}/redeliver")
    assert redeliver.status_code == 200
    [late] = await w.receiver.wait_for(path, 1)
    assert late.json()["event_id"] == row["event_id"]


async def test_duplicate_callbacks_carry_the_same_event_id(w: SandboxWorld) -> None:
    await w.set_faults("wechat", duplicate_callbacks=True)
    order, path = await w.new_order()
    await w.pay(order)
    first, second = await w.receiver.wait_for(path, 2)
    assert first.body == second.body
    [row] = await w.delivered(order.out_trade_no)
    assert row["deliveries"] == 2


async def test_bad_signatures_are_refused(w: SandboxWorld) -> None:
    body = b'{"out_trade_no":"X1","amount_minor":1,"currency":"CNY","notify_url":"http://x/"}'
    url = "/wechat/v1/orders"
    stale = signed_headers(SECRETS["wechat"], "POST", url, body, now=time.time() - 400)
    for headers in (
        {},
        signed_headers("wrong-secret", "POST", url, body),
        stale,
        signed_headers(SECRETS["wechat"], "POST", url, b"{}"),
        signed_headers(SECRETS["alipay"], "POST", url, body),
    ):  # another channel's secret is not this one's
        resp = await w.http.post("/wechat/v1/orders", content=body, headers=headers)
        assert resp.status_code == 401 and resp.json()["code"] == "SIGNATURE_INVALID", headers
    wrong = PaymentChannelClient(w.sandbox.url, {"wechat": "wrong"}, http=w.http)
    with pytest.raises(PartyRejected) as err:
        await wrong.query_order("wechat", "X1")
    assert err.value.code == "SIGNATURE_INVALID"


async def test_down_and_errors_are_unavailable(w: SandboxWorld) -> None:
    order, _ = await w.new_order()
    await w.set_faults("wechat", down=True)
    with pytest.raises(PartyUnavailable) as err:
        await w.new_order()
    assert err.value.status == 503 and err.value.code == "SYSTEM_ERROR"
    assert (await w.pay(order)).status_code == 503
    await w.set_faults("wechat", down=False, error_rate=1.0)
    with pytest.raises(PartyUnavailable):
        await w.client.query_order("wechat", order.out_trade_no)
    # Nothing listens on port 9 here: a connection error is "unavailable" too.
    async with PaymentChannelClient("http://127.0.0.1:9", SECRETS, timeout=2) as nowhere:
        with pytest.raises(PartyUnavailable):
            await nowhere.query_order("wechat", order.out_trade_no)


async def test_fault_knobs_merge_validate_and_reset(w: SandboxWorld) -> None:
    await w.set_faults("bank", latency_ms=5)
    await w.set_faults("bank", payout_failure="unknown")
    knobs = (await w.http.get("/_sandbox/faults/bank")).json()
    assert knobs["latency_ms"] == 5 and knobs["payout_failure"] == "unknown" and knobs["kyc_result"] == "pass"
    for bad in ({"error_rate": 2}, {"refund_failure": "sometimes"}, {"down": "yes"}, {"colour": "red"}):
        resp = await w.http.put("/_sandbox/faults/bank", json=bad)
        assert resp.status_code == 422 and resp.json()["code"] == "INVALID_REQUEST", bad
    assert (await w.http.put("/_sandbox/faults/nobody", json={})).status_code == 404
    assert (await w.http.delete("/_sandbox/faults/bank")).json()["latency_ms"] == 0
    assert (await w.http.get("/_sandbox/faults/bank")).json()["payout_failure"] == "none"


async def test_refund_succeeds_by_callback(w: SandboxWorld) -> None:
    order = await w.paid_order()
    await w.set_faults("wechat", callback_delay_ms=300)  # long enough to see PROCESSING first
    refund_no = new_no("RF")
    path = f"/cb/{refund_no}"
    url = w.receiver.url(path)
    refund = await w.client.create_refund("wechat", refund_no, order.out_trade_no, 300, "not needed", url)
    assert refund.status == "PROCESSING" and refund.out_refund_no == refund_no
    again = await w.client.create_refund("wechat", refund_no, order.out_trade_no, 300, "not needed", url)
    assert again.refund_id == refund.refund_id
    with pytest.raises(PartyRejected) as err:
        await w.client.create_refund("wechat", refund_no, order.out_trade_no, 301, "x", url)
    assert err.value.status == 409 and err.value.code == "OUT_REFUND_NO_CONFLICT"
    [delivery] = await w.receiver.wait_for(path, 1)
    event = delivery.json()
    assert event["event_type"] == "refund.succeeded" and event["out_refund_no"] == refund_no
    assert event["out_trade_no"] == order.out_trade_no and event["amount_minor"] == 300
    queried = await w.client.query_refund("wechat", refund_no)
    assert queried is not None and queried.status == "SUCCESS"
    after = await w.client.query_order("wechat", order.out_trade_no)
    assert after is not None and after.refunded_minor == 300
    [row] = await w.refunds("wechat", order.out_trade_no)
    assert row["request_calls"] == 2
    assert await w.client.query_refund("wechat", new_no("NOPE")) is None


async def test_refund_permanent_failure_by_callback(w: SandboxWorld) -> None:
    order = await w.paid_order()
    await w.set_faults("wechat", refund_failure="permanent")
    refund_no = new_no("RF")
    path = f"/cb/{refund_no}"
    url = w.receiver.url(path)
    await w.client.create_refund("wechat", refund_no, order.out_trade_no, 1000, "cancelled", url)
    [delivery] = await w.receiver.wait_for(path, 1)
    event = delivery.json()
    assert event["event_type"] == "refund.failed" and event["failure_reason"] == "ACCOUNT_CLOSED"
    queried = await w.client.query_refund("wechat", refund_no)
    assert queried is not None and queried.status == "FAILED" and queried.failure_reason == "ACCOUNT_CLOSED"
    # A failed refund gives the amount back: the full amount can be refunded again.
    await w.http.delete("/_sandbox/faults/wechat")
    retry = await w.client.create_refund("wechat", new_no("RF"), order.out_trade_no, 1000, "again", url)
    assert retry.status == "PROCESSING"


async def test_transient_refund_failure_creates_nothing(w: SandboxWorld) -> None:
    order = await w.paid_order()
    await w.set_faults("wechat", refund_failure="transient")
    refund_no, url = new_no("RF"), w.receiver.url("/cb/transient")
    with pytest.raises(PartyUnavailable):
        await w.client.create_refund("wechat", refund_no, order.out_trade_no, 500, "x", url)
    assert await w.refunds("wechat", order.out_trade_no) == []
    assert await w.client.query_refund("wechat", refund_no) is None
    await w.http.delete("/_sandbox/faults/wechat")
    # The platform's retry with the same refund number then goes through.
    refund = await w.client.create_refund("wechat", refund_no, order.out_trade_no, 500, "x", url)
    assert refund.status == "PROCESSING"


async def test_refund_beyond_what_was_paid_is_rejected(w: SandboxWorld) -> None:
    order = await w.paid_order()
    url = w.receiver.url("/cb/exceeded")
    with pytest.raises(PartyRejected) as err:
        await w.client.create_refund("wechat", new_no("RF"), order.out_trade_no, 1001, "x", url)
    assert err.value.code == "REFUND_AMOUNT_EXCEEDED" and err.value.status == 400
    await w.client.create_refund("wechat", new_no("RF"), order.out_trade_no, 600, "x", url)
    # In-flight and finished refunds both count against what is left.
    with pytest.raises(PartyRejected) as err:
        await w.client.create_refund("wechat", new_no("RF"), order.out_trade_no, 401, "x", url)
    assert err.value.code == "REFUND_AMOUNT_EXCEEDED"
    unpaid, _ = await w.new_order()
    with pytest.raises(PartyRejected) as err:
        await w.client.create_refund("wechat", new_no("RF"), unpaid.out_trade_no, 1, "x", url)
    assert err.value.code == "ORDER_NOT_PAID" and err.value.status == 409


async def test_state_and_pending_callbacks_survive_a_restart(w: SandboxWorld) -> None:
    await w.set_faults("alipay", latency_ms=1)
    order, path = await w.new_order()
    w.receiver.fail_next(path, 10_000)
    await w.pay(order)
    failed = await w.receiver.wait_for(path, 1)
    w.sandbox.restart()  # SIGKILL, then the same port and database file
    w.receiver.fail_next(path, 0)
    queried = await w.client.query_order("wechat", order.out_trade_no)
    assert queried is not None and queried.status == "SUCCESS"
    assert queried.channel_txn_id == failed[0].json()["channel_txn_id"]
    assert (await w.http.get("/_sandbox/faults/alipay")).json()["latency_ms"] == 1
    [row] = await w.delivered(order.out_trade_no)
    delivered = w.receiver.deliveries(path)
    assert len(delivered) > len(failed)
    assert {d.json()["event_id"] for d in delivered} == {row["event_id"]}
