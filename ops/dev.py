"""`ops dev` (what `make run` calls): the whole stack with embedded defaults; Ctrl-C stops it all."""

from __future__ import annotations

import asyncio
import signal
import socket
import time
from pathlib import Path

from db.engine import make_engine, make_session_factory
from db.migrate import upgrade
from domain.settings import Settings, ensure_safe_to_start
from ops.dev_keys import ensure_dev_keys
from ops.embedded import EmbeddedPostgres, EmbeddedTemporal
from ops.search_attributes import ensure_registered
from ops.stack import Services, launch
from workflows.client.connection import connect
from workflows.client.schedules import RECON_SCHEDULE_ID, SETTLEMENT_SCHEDULE_ID, ensure_schedules


def _port_free(port: int) -> bool:
    with socket.socket() as s:
        return s.connect_ex(("127.0.0.1", port)) != 0


async def _prepare(settings: Settings, database_url: str, temporal_address: str, keys_file: Path) -> None:
    engine = make_engine(database_url, pool_size=2)
    try:
        await ensure_dev_keys(make_session_factory(engine), keys_file)
    finally:
        await engine.dispose()
    client = await connect(settings, temporal_address)
    if settings.temporal_address:  # a real cluster: register what the dev server got as flags
        added = await ensure_registered(client)
        if added:
            print(f"registered search attributes: {', '.join(added)}")
    await ensure_schedules(client, settings)
    print(f"schedule   {SETTLEMENT_SCHEDULE_ID}: settlement cycle at cron '{settings.settlement_schedule}'")
    print(f"schedule   {RECON_SCHEDULE_ID}: previous day's reconciliation at cron '{settings.recon_schedule}'")


def run(settings: Settings) -> int:
    # Refuse here, before anything starts, rather than watching each child refuse in turn.
    ensure_safe_to_start(settings, "the stack")
    started = time.monotonic()
    data = settings.data_dir.resolve()
    data.mkdir(parents=True, exist_ok=True)
    logs = data / "logs"
    logs.mkdir(exist_ok=True)
    for port, what in ((settings.api_port, "API"), (settings.sandbox_port, "sandbox")):
        if not _port_free(port):
            print(f"port {port} for the {what} is taken: is another stack running?")
            return 1

    pg: EmbeddedPostgres | None = None
    temporal: EmbeddedTemporal | None = None
    services: Services | None = None
    try:
        database_url = settings.database_url
        if database_url is None:
            pg = EmbeddedPostgres(data / "postgres", settings.embedded_pg_port)
            database_url = pg.start()
            print(f"postgres   embedded, {database_url} (data in {pg.data})")
        temporal_address = settings.temporal_address
        if temporal_address is None:
            temporal = EmbeddedTemporal(
                settings.embedded_temporal_port,
                ui_port=settings.temporal_ui_port,
                db_file=data / "temporal.sqlite",
                log_file=logs / "temporal.log",
            )
            temporal_address = temporal.start()
            print(f"temporal   dev server on {temporal_address}, state in {temporal.db_file}")
        upgrade(database_url)
        keys_file = data / "dev-api-keys.json"
        asyncio.run(_prepare(settings, database_url, temporal_address, keys_file))

        services = launch(
            database_url,
            temporal_address,
            logs,
            api_port=settings.api_port,
            sandbox_port=settings.sandbox_port,
            sandbox_db=data / "sandbox.sqlite3",
            # The children are handed the servers' URLs, so they cannot tell embedded from external:
            # they get the environment decided here (dev only when both servers are the embedded ones).
            extra_env={"BACKOFFICE_ENV": settings.environment},
            worker_metrics_port=settings.worker_metrics_port,
            worker_sdk_metrics_port=settings.worker_sdk_metrics_port,
        )
        ui = f"http://localhost:{settings.temporal_ui_port}" if temporal else "(your cluster's UI)"
        print(
            f"\nready in {time.monotonic() - started:.0f}s\n"
            f"  API          http://localhost:{settings.api_port}   (OpenAPI: /docs)\n"
            f"  Temporal UI  {ui}\n"
            f"  sandbox      http://localhost:{settings.sandbox_port}\n"
            f"  API keys     {keys_file}\n"
            f"  logs         {logs}\n"
            + "".join(f"  metrics      {url}   ({what})\n" for what, url in services.metrics_urls().items())
            + f"  ready        http://localhost:{settings.api_port}/ready   (worker pollers present)\n"
            "Ctrl-C stops everything.",
            flush=True,
        )
        stopping = False

        def _stop(*_: object) -> None:
            nonlocal stopping
            stopping = True

        signal.signal(signal.SIGTERM, _stop)
        while not stopping:
            dead = services.dead()
            if dead:
                print(f"{dead[0].name} exited; see {logs / (dead[0].name + '.log')}. Stopping.")
                return 1
            time.sleep(0.5)
        return 0
    except KeyboardInterrupt:
        return 0
    finally:
        print("\nstopping...", flush=True)
        if services:
            services.stop_all()
        if temporal:
            temporal.stop()
        if pg:
            pg.stop()
        print("stopped.")
