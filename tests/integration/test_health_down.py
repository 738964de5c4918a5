"""/health answers 503 and says which dependency is down."""

from __future__ import annotations

import httpx

from api.app import create_app
from domain.settings import Settings
from ops.embedded import free_port


async def _health(settings: Settings) -> httpx.Response:
    app = create_app(settings)
    async with app.router.lifespan_context(app):
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t") as client:
            return await client.get("/health")


async def test_temporal_down_is_503(database_url):
    r = await _health(Settings(database_url=database_url, temporal_address=f"127.0.0.1:{free_port()}"))
    assert r.status_code == 503
    assert r.json()["status"] == "degraded" and r.json()["database"] == "ok" and r.json()["temporal"].startswith("down")


async def test_database_down_is_503(temporal_address):
    dead_db = f"postgresql://postgres@127.0.0.1:{free_port()}/backoffice"
    r = await _health(Settings(database_url=dead_db, temporal_address=temporal_address))
    assert r.status_code == 503
    assert r.json()["database"].startswith("down") and r.json()["temporal"] == "ok"
