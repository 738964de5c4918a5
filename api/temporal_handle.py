"""A lazily (re)connected Temporal client, so the API starts and answers /health while Temporal is down."""

from __future__ import annotations

import asyncio

from temporalio.client import Client

from domain.settings import Settings
from workflows.client.connection import connect
from workflows.client.tracing import traced


class TemporalUnavailable(Exception):
    pass


class TemporalHandle:
    def __init__(self, settings: Settings) -> None:
        self._settings = settings
        self._client: Client | None = None
        self._lock = asyncio.Lock()

    async def get(self) -> Client:
        if self._client is not None:
            return self._client
        async with self._lock:
            if self._client is None:
                try:
                    self._client = traced(await asyncio.wait_for(connect(self._settings), timeout=10))
                except Exception as exc:
                    raise TemporalUnavailable(f"cannot reach Temporal: {exc}") from exc
            return self._client
