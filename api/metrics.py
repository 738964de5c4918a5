"""The API's Prometheus metrics: requests counted and timed by route template and status, on GET /metrics.

The route is the template FastAPI matched (`/v1/orders/{order_no}`), never the raw path, so one series
stands for one endpoint however many orders there are; a path no route matched is counted as `unmatched`."""

from __future__ import annotations

import time
from typing import Any

from fastapi import FastAPI, Response
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client import REGISTRY as DEFAULT_REGISTRY
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from workflows.client.tracing import setup_tracing

UNMATCHED = "unmatched"


class HttpMetrics:
    def __init__(self, registry: CollectorRegistry) -> None:
        self.requests = Counter(
            "backoffice_http_requests",
            "HTTP requests answered by the API, by method, route template and status code.",
            ["method", "route", "status"],
            registry=registry,
        )
        self.latency = Histogram(
            "backoffice_http_request_duration_seconds",
            "Time from a request's arrival to the end of its answer, by method and route template.",
            ["method", "route"],
            buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 25),
            registry=registry,
        )


class RequestMetrics:
    """Pure ASGI middleware (no BaseHTTPMiddleware: it would buffer streamed answers such as CSV exports)."""

    def __init__(self, app: ASGIApp, metrics: HttpMetrics) -> None:
        self.app = app
        self.metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"] == "/metrics":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 500  # what the server answers when the app raises before it starts an answer

        async def remember_status(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, remember_status)
        finally:
            route = _template(scope)
            method = scope["method"]
            self.metrics.requests.labels(method, route, str(status)).inc()
            self.metrics.latency.labels(method, route).observe(time.perf_counter() - started)


def _template(scope: Scope) -> str:
    # The router puts the matched route into the (shared) scope before calling the endpoint.
    route: Any = scope.get("route")
    path = getattr(route, "path_format", None) or getattr(route, "path", None)
    return path if isinstance(path, str) else UNMATCHED


# A registry refuses a metric registered twice; apps created again in one process (tests) share the first.
_metrics: dict[int, HttpMetrics] = {}


def install(app: FastAPI, registry: CollectorRegistry = DEFAULT_REGISTRY) -> None:
    """Count every request and serve the registry (with the process collectors) at GET /metrics; trace
    requests when an OTLP endpoint is configured (flows/tracing.py)."""
    if setup_tracing("api"):
        from opentelemetry.instrumentation.fastapi import FastAPIInstrumentor

        # No spans for each ASGI receive and send: they double the spans of a request and tell nothing.
        FastAPIInstrumentor.instrument_app(app, excluded_urls="metrics,health,ready", exclude_spans=["receive", "send"])
    if id(registry) not in _metrics:
        _metrics[id(registry)] = HttpMetrics(registry)
    metrics = _metrics[id(registry)]
    app.add_middleware(RequestMetrics, metrics=metrics)

    @app.get("/metrics", include_in_schema=False)
    async def scrape() -> Response:
        return Response(generate_latest(registry), media_type=CONTENT_TYPE_LATEST)
