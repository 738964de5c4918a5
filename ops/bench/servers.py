"""Servers a benchmark owns: embedded PostgreSQL (migrated), the Temporal dev server and the stack's
processes, on free ports under a temporary directory, all stopped again whatever happens."""

from __future__ import annotations

import shutil
import signal
import sys
import tempfile
import traceback
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from db.migrate import upgrade
from ops.embedded import EmbeddedPostgres, EmbeddedTemporal, free_port
from ops.stack import Services, launch


@dataclass(frozen=True)
class OwnStack:
    root: Path
    database_url: str
    temporal_address: str
    services: Services
    pids: dict[str, int]
    """The stack's processes by name (postgres is the postmaster; its backends are its children)."""


@contextmanager
def own_stack(prefix: str, extra_env: dict[str, str]) -> Iterator[OwnStack]:
    """Start everything, yield it, stop it; the data stays only if it can explain a failure."""
    root = Path(tempfile.mkdtemp(prefix=prefix))
    logs = root / "logs"
    logs.mkdir()
    # Throwaway cluster (fsync off): a benchmark measures the platform's work, not this disk's flushes,
    # and the SQL baseline it is compared with runs on the very same cluster.
    postgres = EmbeddedPostgres(root / "postgres", free_port(), durable=False)
    temporal = EmbeddedTemporal(free_port(), ui_port=None, db_file=None, log_file=logs / "temporal.log")
    services: Services | None = None
    succeeded = False
    previous_sigterm = signal.signal(signal.SIGTERM, _interrupt)
    try:
        say(f"starting PostgreSQL, Temporal and the stack (data and logs under {root})")
        database_url = postgres.start()
        upgrade(database_url)
        address = temporal.start()
        services = launch(
            database_url,
            address,
            logs,
            api_port=free_port(),
            sandbox_port=free_port(),
            extra_env={**extra_env, "BACKOFFICE_ENV": "dev", "BACKOFFICE_DATA_DIR": str(root / "data")},
        )
        pids = {name: child.proc.pid for name, child in services.children.items() if child.proc is not None}
        assert temporal.proc is not None
        pids |= {"temporal": temporal.proc.pid, "postgres": postgres.pid()}
        yield OwnStack(root, database_url, address, services, pids)
        succeeded = True
    finally:
        signal.signal(signal.SIGTERM, previous_sigterm)  # a second `kill` then ends us without waiting
        if services is not None:
            services.stop_all()
        temporal.stop()
        postgres.stop()
        if succeeded:
            shutil.rmtree(root, ignore_errors=True)
        else:
            print(f"logs kept in {logs} (PostgreSQL's in {postgres.log})", file=sys.stderr)


def _interrupt(signum: int, frame: object) -> None:
    # The servers run in sessions of their own, so nothing stops them but us: a `kill` (or a process
    # manager stopping the benchmark) must unwind through the cleanup just as Ctrl-C does.
    raise KeyboardInterrupt


def failed(exc: BaseException) -> int:
    """Say why a benchmark stopped (own_stack has said where the logs are); its exit status."""
    if isinstance(exc, KeyboardInterrupt):
        print("interrupted", file=sys.stderr)
        return 130
    errors = list(exc.exceptions) if isinstance(exc, BaseExceptionGroup) else [exc]
    for error in errors[:3]:
        traceback.print_exception(error, file=sys.stderr)
    print(f"bench failed: {errors[0]}", file=sys.stderr)
    return 1


def say(message: str) -> None:
    print(f"bench: {message}", flush=True)
