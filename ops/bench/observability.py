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


def _from(job: Callable[[int], Awaitable[T]], first: int) -> Callable[[int], Awaitable[T]]:
    # Each run gets indices of its own (the main benchmark used 0..count-1).
    return lambda i: job(first + i)


async def off_and_on(
    services: Services, count: int, concurrency: int, job: Callable[[int], Awaitable[T]], rounds: int = 2
) -> dict[str, float]:
    """Lifecycles per second with observability off and on, alternated `rounds` times so that neither side
    alone meets the fuller database or a busier moment of the machine."""
    kept = {k: services.env.get(k) for k in _OBSERVABILITY_VARIABLES}
    walls: dict[str, float] = {"off": 0.0, "on": 0.0}
    scrapes = 0
    with otlp_sink() as endpoint:
        for r in range(rounds):
            restart_with(services, {k: "0" if "PORT" in k else None for k in _OBSERVABILITY_VARIABLES})
            _, wall = await run_pool(count, concurrency, _from(job, (2 * r + 1) * count))
            walls["off"] += wall
            restart_with(services, {**kept, "OTEL_EXPORTER_OTLP_ENDPOINT": endpoint})
            async with scraped(list(services.metrics_urls().values())) as done:
                _, wall = await run_pool(count, concurrency, _from(job, (2 * r + 2) * count))
            walls["on"] += wall
            scrapes += done[0]
    off, on = rounds * count / walls["off"], rounds * count / walls["on"]
    return {
        "observability_off_per_s": round(off, 2),
        "observability_on_per_s": round(on, 2),
        "observability_cost": round(1 - on / off, 4),
        "rounds": rounds,
        "scrapes": scrapes,
    }
