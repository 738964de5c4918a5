"""GET /ready: may this API take traffic, i.e. does a worker serve the task queue its flows run on?

/health says the API's own dependencies answer; /ready adds that the flows it starts will move, which
they do only while a worker polls the queue (a deployment routes traffic, or pages someone, on this)."""

from __future__ import annotations

import asyncio

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse

from api.deps import SettingsDep
from api.schemas.ready import Readiness
from workflows.client.queues import MAIN
from workflows.client.task_queues import describe

router = APIRouter(tags=["health"])


@router.get(
    "/ready",
    response_model=Readiness,
    responses={503: {"model": Readiness, "description": "no worker polls a task queue, or Temporal is down"}},
    summary="Readiness: worker pollers present on every task queue (503 when one is missing)",
)
async def ready(request: Request, settings: SettingsDep) -> JSONResponse:
    queues: dict[str, dict[str, int]] = {}
    problem = None
    try:
        client = await request.app.state.temporal.get()
        states = await asyncio.wait_for(
            describe(client, MAIN, poller_max_age_seconds=settings.ready_poller_max_age_seconds), timeout=5
        )
        queues[MAIN] = {kind: s.pollers for kind, s in states.items()}
        missing = [kind for kind, s in states.items() if s.pollers == 0]
        if missing:
            problem = f"no worker polls the {' and '.join(missing)} task queue {MAIN}"
    except Exception as exc:
        problem = f"cannot ask Temporal: {type(exc).__name__}"
    body = Readiness(ready=problem is None, problem=problem, pollers=queues)
    return JSONResponse(body.model_dump(), status_code=200 if problem is None else 503)
