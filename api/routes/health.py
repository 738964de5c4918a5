import asyncio

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse

from api.deps import SessionFactoryDep
from api.schemas.health import Health
from db.engine import ping

router = APIRouter(tags=["health"])


@router.get(
    "/health",
    response_model=Health,
    responses={503: {"model": Health, "description": "the database or Temporal is down"}},
    summary="Liveness of the API and what it depends on (503 when either is down)",
)
async def health(request: Request, factory: SessionFactoryDep) -> JSONResponse:
    database = temporal = "ok"
    try:
        await asyncio.wait_for(ping(factory), timeout=3)
    except Exception as exc:
        database = f"down: {type(exc).__name__}"
    try:
        client = await request.app.state.temporal.get()
        await asyncio.wait_for(client.service_client.check_health(), timeout=3)
    except Exception as exc:
        temporal = f"down: {type(exc).__name__}"
    ok = database == "ok" and temporal == "ok"
    body = {"status": "ok" if ok else "degraded", "database": database, "temporal": temporal}
    return JSONResponse(body, status_code=200 if ok else 503)
