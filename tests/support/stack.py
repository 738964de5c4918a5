"""The real stack for integration tests: embedded Postgres and Temporal dev server on free ports (or
the servers named by BACKOFFICE_TEST_DATABASE_URL / BACKOFFICE_TEST_TEMPORAL_ADDRESS), then the
sandbox, a worker and the API as separate processes talking real HTTP, as `ops dev` runs them."""

from __future__ import annotations

import asyncio
import os
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from pathlib import Path

from ops.embedded import EmbeddedPostgres, EmbeddedTemporal, free_port
from ops.stack import Services, launch

# Business durations shortened so flows finish within a test; each test suite reads them from here.
TEST_DURATIONS = {
    "BACKOFFICE_PAYMENT_TIMEOUT_SECONDS": "8",
    "BACKOFFICE_PAYMENT_POLL_INITIAL_SECONDS": "1",
    "BACKOFFICE_PAYMENT_POLL_MAX_SECONDS": "2",
    "BACKOFFICE_MERCHANT_ACCEPT_TIMEOUT_SECONDS": "6",
    "BACKOFFICE_DISPATCH_ACCEPT_TIMEOUT_SECONDS": "4",
    "BACKOFFICE_DISPATCH_MAX_ATTEMPTS": "3",
    "BACKOFFICE_AUTO_CONFIRM_SECONDS": "5",
    "BACKOFFICE_AFTER_SALE_WINDOW_SECONDS": "6",
    "BACKOFFICE_REFUND_POLL_INITIAL_SECONDS": "1",
    "BACKOFFICE_APPROVAL_REMIND_SECONDS": "2",
    "BACKOFFICE_RECON_SHORT_HOLD_SECONDS": "20",
    "BACKOFFICE_SETTLEMENT_REMIND_SECONDS": "2",
    "BACKOFFICE_SETTLEMENT_PAGE_SIZE": "200",
    "BACKOFFICE_REVIEW_REMIND_SECONDS": "5",
    "BACKOFFICE_REVIEW_ESCALATE_SECONDS": "10",
    "BACKOFFICE_RESUBMIT_WINDOW_SECONDS": "8",
    "BACKOFFICE_CONTRACT_SIGN_WINDOW_SECONDS": "8",
    "BACKOFFICE_KYC_POLL_SECONDS": "2",
    "BACKOFFICE_PAYOUT_BATCH_SECONDS": "1",
    "BACKOFFICE_PAYOUT_BATCH_MAX_ITEMS": "50",
    "BACKOFFICE_PAYOUT_UNKNOWN_ESCALATE_SECONDS": "10",
    # A create request whose flow does not answer (no worker) gets its 503 within a test's patience.
    "BACKOFFICE_API_FLOW_TIMEOUT_SECONDS": "10",
    "BACKOFFICE_IDEMPOTENCY_LEASE_SECONDS": "15",
    # Pollers re-poll every 5 s on the test server (below), so one unseen for 15 s is gone.
    "BACKOFFICE_READY_POLLER_MAX_AGE_SECONDS": "15",
    "BACKOFFICE_LOG_FORMAT": "json",
}

# An idle poller's long poll lasts a minute on a default server, so a dead worker would look present
# for that long; the test server answers empty polls after 5 s instead, so /ready notices within seconds.
TEST_TEMPORAL_CONFIG = {"matching.longPollExpirationInterval": '"5s"'}


def start_postgres(root: Path) -> tuple[str, EmbeddedPostgres | None]:
    external = os.environ.get("BACKOFFICE_TEST_DATABASE_URL")
    if external:
        return external, None
    pg = EmbeddedPostgres(root, free_port(), durable=False)
    return pg.start(), pg


def start_temporal() -> tuple[str, EmbeddedTemporal | None]:
    external = os.environ.get("BACKOFFICE_TEST_TEMPORAL_ADDRESS")
    if external:
        return external, None
    temporal = EmbeddedTemporal(free_port(), ui_port=None, db_file=None, dynamic_config=TEST_TEMPORAL_CONFIG)
    return temporal.start(), temporal


def start_services(database_url: str, temporal_address: str, logs: Path) -> Iterator[Services]:
    services = launch(
        database_url,
        temporal_address,
        logs,
        api_port=free_port(),
        sandbox_port=free_port(),
        # The test stack runs with the published dev secrets on purpose: it is dev by definition.
        extra_env={
            **TEST_DURATIONS,
            "BACKOFFICE_ENV": "dev",
            "BACKOFFICE_DATA_DIR": str(logs),
            "SANDBOX_RETRY_BASE_MS": "200",
        },
    )
    try:
        yield services
    finally:
        services.stop_all()


async def restart_api(services: Services, env: dict[str, str]) -> None:
    """Start the API again with this environment (its settings are read at start)."""
    services.children["api"].stop()
    services.env = env
    api = services.start("api")
    # Off the event loop: the API's own /health check may go through a proxy the test runs.
    await asyncio.to_thread(api.wait_http, f"{services.api_url}/health")


@asynccontextmanager
async def api_with(services: Services, **settings: str) -> AsyncIterator[None]:
    """The API restarted with these settings for the block, then with the suite's again."""
    original = services.env
    await restart_api(services, {**original, **settings})
    try:
        yield
    finally:
        await restart_api(services, original)
