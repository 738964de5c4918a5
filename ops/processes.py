"""Child processes of the dev stack (and of the test harness): start, wait until ready, stop."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx


class Child:
    def __init__(self, name: str, args: list[str], env: dict[str, str], log_file: Path | None = None) -> None:
        self.name = name
        self.args = args
        self.env = env
        self.log_file = log_file
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> Child:
        out = self.log_file.open("ab") if self.log_file else None
        self.proc = subprocess.Popen(
            [sys.executable, *self.args],
            env=self.env,
            stdout=out,
            stderr=subprocess.STDOUT if out else None,
            start_new_session=True,
        )
        return self

    @property
    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def wait_http(self, url: str, timeout: float = 60, ok: tuple[int, ...] = (200,)) -> None:
        deadline = time.monotonic() + timeout
        last = "no answer"
        while time.monotonic() < deadline:
            if not self.alive:
                raise RuntimeError(f"{self.name} exited ({self.proc and self.proc.returncode}) before {url} answered")
            try:
                r = httpx.get(url, timeout=2)
                if r.status_code in ok:
                    return
                last = f"{r.status_code} {r.text[:200]}"
            except httpx.HTTPError as exc:
                last = type(exc).__name__
            time.sleep(0.25)
        raise TimeoutError(f"{self.name}: {url} not ready after {timeout}s ({last})")

    def stop(self, timeout: float = 15) -> None:
        if not self.alive or self.proc is None:
            return
        os.killpg(self.proc.pid, signal.SIGTERM)
        try:
            self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.kill()

    def kill(self) -> None:
        """SIGKILL, as a crash would: nothing gets to clean up."""
        if self.alive and self.proc is not None:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(10)
