"""The real stack for integration tests: embedded Postgres and Temporal dev server on free ports (or
the servers named by BACKOFFICE_TEST_DATABASE_URL / BACKOFFICE_TEST_TEMPORAL_ADDRESS), then the
sandbox, a worker and the API as separate processes talking real HTTP, exactly as `ops dev` runs them."""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from ops.embedded import EmbeddedPostgres, EmbeddedTemporal, free_port
from ops.processes import Child

# Business durations shortened so flows finish within a test; each test suite reads them from here.
TEST_DURATIONS = {
    "BACKOFFICE_PAYMENT_TIMEOUT_SECONDS": "8",
    "BACKOFFICE_PAYMENT_POLL_INITIAL_SECONDS": "1",
    "BACKOFFICE_PAYMENT_POLL_MAX_SECONDS": "2",
    "BACKOFFICE_MERCHANT_ACCEPT_TIMEOUT_SECONDS": "6",
    "BACKOFFICE_DISPATCH_ACCEPT_TIMEOUT_SECONDS": "4",
    "BACKOFFICE_DISPATCH_MAX_ATTEMPTS": "3",
    "BACKOFFICE_AUTO_CONFIRM_SECONDS": "5",
    "BACKOFFICE_AFTER_SALE_WINDOW_SECONDS": "3",
    "BACKOFFICE_REFUND_POLL_INITIAL_SECONDS": "1",
    "BACKOFFICE_REVIEW_REMIND_SECONDS": "5",
    "BACKOFFICE_REVIEW_ESCALATE_SECONDS": "10",
}


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
    temporal = EmbeddedTemporal(free_port(), ui_port=None, db_file=None)
    return temporal.start(), temporal


@dataclass
class Services:
    """The sandbox, worker and API processes, with what a test needs to reach or restart them."""

    env: dict[str, str]
    logs: Path
    sandbox_url: str
    api_url: str
    children: dict[str, Child] = field(default_factory=dict)

    def start(self, name: str) -> Child:
        args = {
            "sandbox": [
                "-m",
                "ops.sandbox",
                "--port",
                self.sandbox_url.rsplit(":", 1)[1],
                "--db",
                str(self.logs / "sandbox.sqlite3"),
            ],
            "worker": ["-m", "workers"],
            "api": ["-m", "api"],
        }[name]
        child = Child(name, args, self.env, self.logs / f"{name}.log").start()
        self.children[name] = child
        return child

    def restart_worker(self, *, kill: bool = True) -> None:
        """Kill (as a crash would) or stop the worker, then start a fresh one."""
        old = self.children["worker"]
        old.kill() if kill else old.stop()
        self.start("worker")

    def stop_all(self) -> None:
        for child in reversed(list(self.children.values())):
            child.stop()


def start_services(database_url: str, temporal_address: str, logs: Path) -> Iterator[Services]:
    api_port, sandbox_port = free_port(), free_port()
    env = {
        **os.environ,
        **TEST_DURATIONS,
        "BACKOFFICE_DATABASE_URL": database_url,
        "TEMPORAL_ADDRESS": temporal_address,
        "BACKOFFICE_API_PORT": str(api_port),
        "BACKOFFICE_SANDBOX_PORT": str(sandbox_port),
        "BACKOFFICE_SANDBOX_URL": f"http://127.0.0.1:{sandbox_port}",
        "BACKOFFICE_PUBLIC_BASE_URL": f"http://127.0.0.1:{api_port}",
        "BACKOFFICE_DATA_DIR": str(logs),
        "SANDBOX_RETRY_BASE_MS": "200",
    }
    services = Services(
        env=env, logs=logs, sandbox_url=f"http://127.0.0.1:{sandbox_port}", api_url=f"http://127.0.0.1:{api_port}"
    )
    try:
        services.start("sandbox").wait_http(f"{services.sandbox_url}/health")
        services.start("worker")
        services.start("api").wait_http(f"{services.api_url}/health")
        yield services
    finally:
        services.stop_all()
