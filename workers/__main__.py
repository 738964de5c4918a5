"""`python -m workers`: serve the task queues until SIGINT/SIGTERM, then drain gracefully."""

from __future__ import annotations

import asyncio
import logging
import signal
from datetime import timedelta

import httpx
from temporalio.worker import Worker

from db.engine import make_session_factory, make_worker_engine
from domain.settings import ensure_safe_to_start, get_settings
from workers import registry, telemetry
from workflows.client import queues
from workflows.client.connection import connect
from workflows.client.logs import configure_logging
from workflows.client.loop import run_on_worker_loop
from workflows.client.tracing import instrument_http, setup_tracing, shutdown_tracing, traced, workflow_runner

log = logging.getLogger("workers")


async def serve() -> None:
    settings = get_settings()
    ensure_safe_to_start(settings, "the worker")
    if not settings.database_url:
        raise SystemExit("BACKOFFICE_DATABASE_URL is not set (`ops dev` sets it for the embedded server)")
    engine = make_worker_engine(settings.database_url)
    setup_tracing("worker")
    telemetry.use_sdk_metrics(settings)
    client = traced(await connect(settings))
    sessions = make_session_factory(engine)
    telemetry.serve_business_metrics(settings, sessions, client)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    async with httpx.AsyncClient(timeout=15) as http:
        instrument_http(http)
        worker = Worker(
            client,
            task_queue=queues.MAIN,
            workflows=registry.WORKFLOWS,
            workflow_runner=workflow_runner(),
            activities=registry.activities(settings, sessions, http),
            # Running activities get this long to finish before the worker gives up on them; an
            # unfinished one is retried elsewhere, which is safe because every activity is idempotent.
            graceful_shutdown_timeout=timedelta(seconds=10),
        )
        async with worker:
            log.info("worker serving task queue %s", queues.MAIN)
            await stop.wait()
            log.info("shutting down: draining running activities")
    await engine.dispose()
    shutdown_tracing()


def main() -> None:
    configure_logging(get_settings(), "worker")
    run_on_worker_loop(serve())


if __name__ == "__main__":
    main()
