"""Test helpers around the sandbox: run it as a real subprocess, and catch its callbacks.

``SandboxProcess`` runs ``python -m ops.sandbox`` exactly as the dev stack does (so restarts are real
process restarts). ``CallbackReceiver`` is a tiny threaded HTTP server standing in for the platform's
callback endpoint: it records every delivery and can be told to fail the next N on a path.
"""

from __future__ import annotations

import asyncio
import json
import os
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, ClassVar

import httpx

REPO_ROOT = Path(__file__).resolve().parents[2]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


@dataclass(frozen=True)
class Delivery:
    path: str
    headers: dict[str, str]
    body: bytes

    def json(self) -> dict[str, Any]:
        data: dict[str, Any] = json.loads(self.body)
        return data


class CallbackReceiver:
    def __init__(self) -> None:
        self.port = free_port()
        self._lock = threading.Lock()
        self._deliveries: list[Delivery] = []
        self._failures: dict[str, int] = {}
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version: ClassVar[str] = "HTTP/1.1"

            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                fail = receiver._record(Delivery(self.path, dict(self.headers.items()), body))
                reply = b'{"code":"FAIL"}' if fail else b'{"code":"SUCCESS"}'
                self.send_response(500 if fail else 200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(reply)))
                self.end_headers()
                self.wfile.write(reply)

            def log_message(self, *_: Any) -> None:  # keep pytest output clean
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    def start(self) -> CallbackReceiver:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    def fail_next(self, path: str, n: int) -> None:
        """Answer the next ``n`` deliveries to ``path`` with 500 (0 clears)."""
        with self._lock:
            self._failures[path] = n

    def _record(self, delivery: Delivery) -> bool:
        with self._lock:
            left = self._failures.get(delivery.path, 0)
            if left > 0:
                self._failures[delivery.path] = left - 1
            self._deliveries.append(delivery)
            return left > 0

    def deliveries(self, path: str) -> list[Delivery]:
        with self._lock:
            return [d for d in self._deliveries if d.path == path]

    async def wait_for(self, path: str, count: int, within: float = 10.0) -> list[Delivery]:
        """Wait until at least ``count`` deliveries reached ``path`` (failed ones included)."""
        deadline = time.monotonic() + within
        while True:
            got = self.deliveries(path)
            if len(got) >= count:
                return got
            if time.monotonic() >= deadline:
                raise AssertionError(f"expected {count} deliveries to {path} in {within}s, got {len(got)}")
            await asyncio.sleep(0.02)


class SandboxProcess:
    """``python -m ops.sandbox`` on a free port with its own SQLite file; ``restart`` keeps both."""

    def __init__(self, db: Path, secrets: dict[str, str], *, log: Path, retry_base_ms: int = 50) -> None:
        self.db = db
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log = log
        self.env = {**os.environ, "BACKOFFICE_PARTY_SECRETS": json.dumps(secrets),
                    "SANDBOX_RETRY_BASE_MS": str(retry_base_ms), "PYTHONPATH": str(REPO_ROOT)}
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self, timeout: float = 20.0) -> SandboxProcess:
        with self.log.open("ab") as log:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "ops.sandbox", "--port", str(self.port), "--db", str(self.db),
                 "--public-url", self.url, "--log-level", "warning"],
                cwd=REPO_ROOT, env=self.env, stdout=log, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"sandbox exited with {self.proc.returncode}; see {self.log}")
            try:
                if httpx.get(f"{self.url}/health", timeout=0.5).status_code == 200:
                    return self
            except httpx.HTTPError:
                pass
            time.sleep(0.05)
        self.stop()
        raise RuntimeError(f"sandbox did not become healthy within {timeout}s; see {self.log}")

    def kill(self) -> None:
        """SIGKILL: no graceful shutdown, so a restart proves state is durable, not flushed on exit."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(timeout=10)

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=10)

    def restart(self) -> None:
        self.kill()
        self.start()


async def eventually(check: Callable[[], Awaitable[Any]], within: float = 10.0) -> Any:
    """Poll the async ``check`` until it returns something truthy, and return that."""
    deadline = time.monotonic() + within
    while True:
        result = await check()
        if result:
            return result
        if time.monotonic() >= deadline:
            raise AssertionError(f"condition not met within {within}s (last: {result!r})")
        await asyncio.sleep(0.02)
