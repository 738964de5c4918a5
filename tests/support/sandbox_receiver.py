"""Test helpers around the sandbox: run it as a real subprocess, and catch its callbacks.

``SandboxProcess`` runs ``python -m ops.sandbox`` exactly as the dev stack does (so restarts are real
process restarts). ``CallbackReceiver`` is a tiny threaded HTTP server standing in for the platform's
callback endpoint: it records every delivery and can be told to fail the next N on a path.
``SandboxWorld`` bundles both with the platform's channel client and the sandbox's control API.
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
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx

from activities.parties.payment_channel import ChannelOrder, PaymentChannelClient

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
            protocol_version = "HTTP/1.1"

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
        self.env = {
            **os.environ,
            "BACKOFFICE_ENV": "dev",  # a stand-in outside world for tests (default field key)
            "BACKOFFICE_PARTY_SECRETS": json.dumps(secrets),
            "SANDBOX_RETRY_BASE_MS": str(retry_base_ms),
            "PYTHONPATH": str(REPO_ROOT),
        }
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self, timeout: float = 20.0) -> SandboxProcess:
        with self.log.open("ab") as log:
            self.proc = subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "ops.sandbox",
                    "--port",
                    str(self.port),
                    "--db",
                    str(self.db),
                    "--public-url",
                    self.url,
                    "--log-level",
                    "warning",
                ],
                cwd=REPO_ROOT,
                env=self.env,
                stdout=log,
                stderr=subprocess.STDOUT,
            )
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


def new_no(prefix: str) -> str:
    return f"{prefix}{uuid.uuid4().hex[:16]}"


@dataclass
class SandboxWorld:
    """One test's view of the outside world: the platform's client, raw HTTP and the receiver."""

    sandbox: SandboxProcess
    http: httpx.AsyncClient
    client: PaymentChannelClient
    receiver: CallbackReceiver

    async def set_faults(self, party: str, **knobs: Any) -> None:
        resp = await self.http.put(f"/_sandbox/faults/{party}", json=knobs)
        assert resp.status_code == 200, resp.text

    async def new_order(self, channel: str = "wechat", amount: int = 1000) -> tuple[ChannelOrder, str]:
        """A fresh channel order whose callbacks go to their own receiver path (returned)."""
        payment_no = new_no("PAY")
        path = f"/cb/{payment_no}"
        url = self.receiver.url(path)
        order = await self.client.create_order(channel, payment_no, amount, "CNY", "haircut", url)
        return order, path

    async def pay(self, order: ChannelOrder) -> httpx.Response:
        assert order.pay_url is not None
        return await self.http.post(order.pay_url)

    async def paid_order(self, amount: int = 1000) -> ChannelOrder:
        order, _ = await self.new_order(amount=amount)
        assert (await self.pay(order)).status_code == 200
        return order

    async def inspect_order(self, channel: str, out_trade_no: str) -> dict[str, Any]:
        data: dict[str, Any] = (await self.http.get(f"/_sandbox/{channel}/orders/{out_trade_no}")).json()
        return data

    async def refunds(self, channel: str, out_trade_no: str) -> list[dict[str, Any]]:
        resp = await self.http.get(f"/_sandbox/{channel}/refunds", params={"out_trade_no": out_trade_no})
        rows: list[dict[str, Any]] = resp.json()
        return rows

    async def notes(self, ref: str) -> list[dict[str, Any]]:
        resp = await self.http.get("/_sandbox/notifications", params={"ref": ref})
        assert resp.status_code == 200
        rows: list[dict[str, Any]] = resp.json()
        return rows

    async def delivered(self, ref: str, within: float = 10.0) -> list[dict[str, Any]]:
        """Outbox rows for ``ref`` once every one of them is fully delivered."""

        async def done() -> list[dict[str, Any]]:
            rows = await self.notes(ref)
            return rows if rows and all(r["delivered_at"] and not r["pending"] for r in rows) else []

        rows: list[dict[str, Any]] = await eventually(done, within)
        return rows
