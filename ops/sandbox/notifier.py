"""Delivers queued callbacks to the platform, the way a real channel does: at least once, signed,
retried with exponential backoff until the receiver answers 2xx (or attempts run out).

Delivery progress lives in the outbox table, so a sandbox restart picks up exactly where it left off.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from typing import Any

import httpx

from domain.signing import signed_headers
from ops.sandbox.store import Store

log = logging.getLogger("ops.sandbox.notifier")

IDLE_POLL_SECONDS = 0.1


class Notifier:
    def __init__(
        self,
        store: Store,
        secrets: dict[str, str],
        *,
        retry_base_s: float,
        before_tick: Callable[[], Any] | None = None,
        timeout: float = 5.0,
    ) -> None:
        self.store = store
        self.secrets = secrets
        self.retry_base_s = retry_base_s
        self.before_tick = before_tick
        self.timeout = timeout
        self._wake = asyncio.Event()

    def wake(self) -> None:
        """Called after a notification is queued so it goes out now rather than at the next poll."""
        self._wake.set()

    async def run(self) -> None:
        async with httpx.AsyncClient(timeout=self.timeout) as http:
            while True:
                sent = 0
                try:
                    if self.before_tick is not None:
                        self.before_tick()
                    due = self.store.due_notifications(time.time())
                    sent = len(due)
                    await asyncio.gather(*(self._deliver(http, n) for n in due))
                except Exception:  # the loop must outlive any one bad row or a locked database
                    log.exception("sandbox notifier tick failed")
                if sent == 0:
                    self._wake.clear()
                    try:
                        await asyncio.wait_for(self._wake.wait(), IDLE_POLL_SECONDS)
                    except TimeoutError:
                        pass

    async def _deliver(self, http: httpx.AsyncClient, note: dict[str, Any]) -> None:
        body: bytes = note["body"].encode()
        secret = self.secrets.get(note["party"])
        ok, error = False, None
        if secret is None:
            error = f"no secret configured for {note['party']}"
        else:
            # Signed at send time, with a fresh nonce: a retry hours later must still pass the receiver's
            # freshness and replay checks.
            headers = {"Content-Type": "application/json", **signed_headers(secret, "POST", note["notify_url"], body)}
            try:
                resp = await http.post(note["notify_url"], content=body, headers=headers)
                ok = 200 <= resp.status_code < 300
                error = None if ok else f"HTTP {resp.status_code}: {resp.text[:200]}"
            except httpx.HTTPError as exc:
                error = f"{type(exc).__name__}: {exc}"
        if not ok:
            log.info("callback %s to %s failed: %s", note["event_id"], note["notify_url"], error)
        self.store.record_attempt(note["event_id"], ok=ok, error=error, now=time.time(), retry_base_s=self.retry_base_s)
