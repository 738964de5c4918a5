"""The per-role API keys the dev stack writes for local use (never used outside `ops dev`)."""

from __future__ import annotations

import json
import os
from pathlib import Path

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from db.api_keys import issue_key, resolve_key
from db.engine import unit_of_work
from domain.access import DEV_KEY_ROLES


async def ensure_dev_keys(factory: async_sessionmaker[AsyncSession], path: Path) -> dict[str, str]:
    """Keep the file if its keys still work against this database; otherwise issue new ones."""
    if path.exists():
        keys: dict[str, str] = json.loads(path.read_text())
        async with unit_of_work(factory) as session:
            valid = [await resolve_key(session, keys.get(role.value, "")) for role in DEV_KEY_ROLES]
        if all(p is not None and p.role is role for p, role in zip(valid, DEV_KEY_ROLES, strict=True)):
            return keys
    keys = {}
    async with unit_of_work(factory) as session:
        for role in DEV_KEY_ROLES:
            # One person per role: the dev finance person is never also the dev auditor or admin.
            _, keys[role.value] = await issue_key(
                session, role=role, name=f"dev-{role.value}", person=f"dev-{role.value}"
            )
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        json.dump(keys, f, indent=2)
    path.chmod(0o600)
    return keys
