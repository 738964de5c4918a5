"""`ops bench orders --observability`: the same lifecycles with metrics and tracing off, then on, in one run.

On means what production pays: traces exported by OTLP (to a sink here that accepts and drops them),
and every /metrics scraped as Prometheus would, business figures included."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from contextlib import asynccontextmanager, contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, TypeVar

import httpx

from ops.bench.common import run_pool
from ops.stack import Services

T = TypeVar("T")
SCRAPE_EVERY_SECONDS = 15.0  # the scrape interval of ops/observability/prometheus.yml
_OBSERVABILITY_VARIABLES = (
    "OTEL_EXPORTER_OTLP_ENDPOINT",
    "BACKOFFICE_WORKER_METRICS_PORT",
    "BACKOFFICE_WORKER_SDK_METRICS_PORT",
)


@contextmanager
def otlp_sink() -> Iterator[str]:
    """An OTLP/HTTP endpoint that accepts every export (an empty answer is an empty protobuf response)."""

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            self.rfile.read(int(self.headers.get("Content-Length", 0)))
            self.send_response(200)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, *_: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


def restart_with(services: Services, env: dict[str, str | None]) -> None:
    """The worker and the API started again with these variables (None: unset), ready when /ready says so."""
    for key, value in env.items():
        if value is None:
            services.env.pop(key, None)
        else:
            services.env[key] = value
    for name in ("worker", "api"):
        services.children[name].stop()
    services.start("worker")
    services.start("api").wait_http(f"{services.api_url}/ready", timeout=120)


@asynccontextmanager
async def scraped(urls: list[str]) -> AsyncIterator[list[int]]:
    """Scrape every URL as Prometheus would while the block runs; yields the count of scrapes done."""
    done = [0]

    async def loop() -> None:
        async with httpx.AsyncClient(timeout=30) as client:
            while True:
                for url in urls:
                    r = await client.get(url)
                    r.raise_for_status()
                    done[0] += 1
                await asyncio.sleep(SCRAPE_EVERY_SECONDS)

    task = asyncio.create_task(loop())
    try:
        yield done
    finally:
        task.cancel()
        try:
            await task
        except asyncio.CancelledError:
            pass


async def off_and_on(
    services: Services, count: int, concurrency: int, job: Callable[[int], Awaitable[T]]
) -> dict[str, float]:
    """Lifecycles per second with observability off, then on (the later run meets a fuller database)."""
    kept = {k: services.env.get(k) for k in _OBSERVABILITY_VARIABLES}
    restart_with(services, {k: "0" if "PORT" in k else None for k in _OBSERVABILITY_VARIABLES})
    _, off_wall = await run_pool(count, concurrency, lambda i: job(count + i))
    with otlp_sink() as endpoint:
        restart_with(services, {**kept, "OTEL_EXPORTER_OTLP_ENDPOINT": endpoint})
        async with scraped(list(services.metrics_urls().values())) as scrapes:
            _, on_wall = await run_pool(count, concurrency, lambda i: job(2 * count + i))
    off, on = count / off_wall, count / on_wall
    return {
        "observability_off_per_s": round(off, 2),
        "observability_on_per_s": round(on, 2),
        "observability_cost": round(1 - on / off, 4),
        "scrapes": scrapes[0],
    }
