"""Every workflow and activity the workers serve, registered in one place."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import httpx
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from activities.ledger import LedgerActivities
from domain.settings import Settings

WORKFLOWS: list[type] = []


def activities(
    settings: Settings, sessions: async_sessionmaker[AsyncSession], http: httpx.AsyncClient
) -> list[Callable[..., Any]]:
    ledger = LedgerActivities(sessions)
    return [ledger.post]
