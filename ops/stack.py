"""The platform's own processes (sandbox, worker, API) as children that talk real HTTP to each other.

Used by `ops dev`, the test harness and the benchmarks, so all three run the stack the same way."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

from ops.embedded import free_port
from ops.processes import Child


@dataclass
class Services:
    env: dict[str, str]
    logs: Path
    sandbox_port: int
    api_port: int
    sandbox_db: Path
    worker_metrics_port: int = 0
    worker_sdk_metrics_port: int = 0
    children: dict[str, Child] = field(default_factory=dict)

    @property
    def sandbox_url(self) -> str:
        return f"http://127.0.0.1:{self.sandbox_port}"

    @property
    def api_url(self) -> str:
        return f"http://127.0.0.1:{self.api_port}"

    def metrics_urls(self) -> dict[str, str]:
        """Every /metrics the stack serves, by what it tells (a port of 0 serves none)."""
        urls = {"api": f"{self.api_url}/metrics"}
        if self.worker_metrics_port:
            urls["worker"] = f"http://127.0.0.1:{self.worker_metrics_port}/metrics"
        if self.worker_sdk_metrics_port:
            urls["temporal-sdk"] = f"http://127.0.0.1:{self.worker_sdk_metrics_port}/metrics"
        return urls

    def start(self, name: str) -> Child:
        args = {
            "sandbox": ["-m", "ops.sandbox", "--port", str(self.sandbox_port), "--db", str(self.sandbox_db)],
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

    def dead(self) -> list[Child]:
        return [c for c in self.children.values() if not c.alive]

    def stop_all(self) -> None:
        for child in reversed(list(self.children.values())):
            child.stop()


def launch(
    database_url: str,
    temporal_address: str,
    logs: Path,
    *,
    api_port: int,
    sandbox_port: int,
    sandbox_db: Path | None = None,
    extra_env: dict[str, str] | None = None,
    worker_metrics_port: int | None = None,
    worker_sdk_metrics_port: int | None = None,
) -> Services:
    """Start the sandbox, a worker and the API and wait until the sandbox and the API answer.

    The worker's metrics ports default to free ones, so stacks side by side (tests, benchmarks) never collide."""
    logs.mkdir(parents=True, exist_ok=True)
    metrics_port = free_port() if worker_metrics_port is None else worker_metrics_port
    sdk_metrics_port = free_port() if worker_sdk_metrics_port is None else worker_sdk_metrics_port
    env = {
        **os.environ,
        **(extra_env or {}),
        "BACKOFFICE_DATABASE_URL": database_url,
        "TEMPORAL_ADDRESS": temporal_address,
        "BACKOFFICE_API_PORT": str(api_port),
        "BACKOFFICE_SANDBOX_PORT": str(sandbox_port),
        "BACKOFFICE_SANDBOX_URL": f"http://127.0.0.1:{sandbox_port}",
        "BACKOFFICE_PUBLIC_BASE_URL": f"http://127.0.0.1:{api_port}",
        "BACKOFFICE_WORKER_METRICS_PORT": str(metrics_port),
        "BACKOFFICE_WORKER_SDK_METRICS_PORT": str(sdk_metrics_port),
    }
    services = Services(
        env=env,
        logs=logs,
        sandbox_port=sandbox_port,
        api_port=api_port,
        sandbox_db=sandbox_db or logs / "sandbox.sqlite3",
        worker_metrics_port=metrics_port,
        worker_sdk_metrics_port=sdk_metrics_port,
    )
    try:
        services.start("sandbox").wait_http(f"{services.sandbox_url}/health")
        services.start("worker")
        services.start("api").wait_http(f"{services.api_url}/health")
    except BaseException:
        services.stop_all()
        raise
    return services
