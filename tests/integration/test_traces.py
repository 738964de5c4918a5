"""Traces: one order placement is one trace, from the API request through the workflow start, the order
and payment workflows and their activities out to the payment channel's HTTP call, exported by OTLP."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from domain.settings import Settings
from tests.integration.conftest import polling
from tests.support.otlp_receiver import OtlpReceiver, Span
from tests.support.sandbox_receiver import eventually
from tests.support.stack import Services
from workflows.client.connection import connect

TRACING_ENV = {"OTEL_BSP_SCHEDULE_DELAY": "100"}  # export within a tenth of a second, not five


def _url(span: Span) -> str:
    # The httpx instrumentation names it url.full (stable HTTP conventions) or http.url (the older ones).
    return str(span.attributes.get("url.full") or span.attributes.get("http.url") or "")


async def _restart_api_and_worker(services: Services, temporal_address: str) -> None:
    for name in ("worker", "api"):
        services.children[name].stop()
    worker = services.start("worker")
    services.start("api").wait_http(f"{services.api_url}/health")
    assert worker.proc is not None
    await polling(await connect(Settings(), temporal_address), worker.proc.pid)


@pytest.fixture(scope="module")
async def otlp(services: Services, temporal_address: str) -> AsyncIterator[OtlpReceiver]:
    """The API and the worker restarted with an OTLP endpoint set, then restarted without it."""
    with OtlpReceiver() as receiver:
        services.env.update(TRACING_ENV, OTEL_EXPORTER_OTLP_ENDPOINT=receiver.endpoint)
        try:
            await _restart_api_and_worker(services, temporal_address)
            yield receiver
        finally:
            for name in (*TRACING_ENV, "OTEL_EXPORTER_OTLP_ENDPOINT"):
                services.env.pop(name, None)
            await _restart_api_and_worker(services, temporal_address)


async def test_one_order_placement_is_one_trace_from_the_api_to_the_channel_call(otlp, shop):
    merchant_id = await shop.merchant()
    placed = await shop.placed(merchant_id, channel="wechat")
    payment_no = placed["payment"]["payment_no"]

    def request_span():
        return next(
            (s for s in otlp.spans if s.service == "backoffice-api" and s.name == "POST /v1/orders" and s.kind == 2),
            None,
        )

    async def whole_trace():
        root = request_span()
        if root is None:
            return None
        spans = otlp.trace(root.trace_id)
        channel_calls = [
            s
            for s in spans
            if s.service == "backoffice-worker"
            and s.kind == 3  # CLIENT
            and _url(s).startswith(shop.services.sandbox_url)
        ]
        # The order opens the channel order itself, before it starts its payment flow.
        payment_flow = any(s.name == "RunWorkflow:PaymentWorkflow" for s in spans)
        return spans if channel_calls and payment_flow else None

    spans = await eventually(whole_trace, within=30)
    names = {s.name for s in spans}
    assert {
        "POST /v1/orders",  # the API request
        "StartUpdateWithStartWorkflow:OrderWorkflow",  # the client's update-with-start
        "RunWorkflow:OrderWorkflow",
        "HandleUpdate:placed",
        "RunActivity:orders.create",
        "StartChildWorkflow:PaymentWorkflow",
        "RunWorkflow:PaymentWorkflow",
        "RunActivity:channel.create_order",
    } <= names, sorted(names)
    assert {s.service for s in spans} == {"backoffice-api", "backoffice-worker"}
    # The channel call hangs under the activity that made it, and carried the payment's number.
    by_id = {s.span_id: s for s in spans}
    (call,) = [s for s in spans if s.kind == 3 and _url(s).startswith(shop.services.sandbox_url)]
    assert by_id[call.parent_id].name == "RunActivity:channel.create_order"
    assert payment_no
