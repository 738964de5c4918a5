"""Operators: stuck flows with their Temporal UI links, and an order's timeline across order, payments,
refunds and settlement."""

from __future__ import annotations

from typing import Annotated
from urllib.parse import quote

from fastapi import APIRouter, Query, Request
from fastapi.responses import HTMLResponse, Response

from api.console.auth import User
from api.console.calls import api
from api.console.render import page, refused
from api.deps import get_settings

router = APIRouter(prefix="/console")


def temporal_ui(request: Request) -> str:
    settings = get_settings(request)
    base = settings.temporal_ui_url or f"http://localhost:{settings.temporal_ui_port}"
    return f"{base.rstrip('/')}/namespaces/{quote(settings.temporal_namespace)}/workflows"


@router.get("/ops", response_class=HTMLResponse)
async def stuck(request: Request, user: User) -> Response:
    answer = await api(request, user, "GET", "/v1/ops/stuck")
    if not answer.ok:
        return refused(request, user, answer)
    return page(request, "ops.html", user, flows=answer.body, ui=temporal_ui(request), quote=quote)


@router.get("/orders", response_class=HTMLResponse)
async def order(
    request: Request, user: User, no: Annotated[str, Query(max_length=40, pattern=r"^[A-Za-z0-9_-]*$")] = ""
) -> Response:
    if not no:
        return page(request, "order.html", user, o=None, no="")
    answer = await api(request, user, "GET", f"/v1/orders/{no}")
    if not answer.ok:
        return refused(request, user, answer)
    return page(request, "order.html", user, o=answer.body, no=no, ui=temporal_ui(request))
