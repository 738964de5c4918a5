"""Signing in and out, and the overview with orders and money per day."""

from __future__ import annotations

import secrets
from typing import Annotated

from fastapi import APIRouter, Form, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from api.console import auth
from api.console.auth import User
from api.console.render import page
from api.deps import SessionDep, get_session_factory, get_settings
from db import console as repo
from db.api_keys import resolve_key
from db.engine import unit_of_work
from domain.crypto import FieldCipher

router = APIRouter(prefix="/console")
CHART_DAYS = 14


@router.get("/sign-in", response_class=HTMLResponse)
async def sign_in_form(request: Request) -> Response:
    pre = secrets.token_urlsafe(24)
    response = page(request, "sign_in.html", None, pre=pre, error=None)
    auth.set_cookie(request, response, auth.PRE_COOKIE, pre, 600)
    return response


@router.post("/sign-in", response_class=HTMLResponse)
async def sign_in(
    request: Request, api_key: Annotated[str, Form(max_length=200)], pre: Annotated[str, Form()]
) -> Response:
    cookie = request.cookies.get(auth.PRE_COOKIE, "")
    if not cookie or not secrets.compare_digest(cookie, pre):
        return page(request, "sign_in.html", None, status_code=403, pre=pre, error="CSRF")
    settings = get_settings(request)
    async with unit_of_work(get_session_factory(request)) as session:
        principal = await resolve_key(session, api_key.strip())
        if principal is None:
            return page(request, "sign_in.html", None, status_code=401, pre=pre, error="UNAUTHENTICATED")
        cipher = FieldCipher(settings.field_encryption_key)
        token, _ = await repo.open_session(
            session, principal.key_id, api_key.strip(), cipher, settings.console_session_seconds
        )
    response = RedirectResponse("/console", status_code=303)
    auth.set_cookie(request, response, auth.COOKIE, token, settings.console_session_seconds)
    response.delete_cookie(auth.PRE_COOKIE, path=auth.PATH)
    return response


@router.post("/sign-out")
async def sign_out(request: Request, user: auth.FormUser) -> Response:
    async with unit_of_work(get_session_factory(request)) as session:
        await repo.close_session(session, user.token)
    response = RedirectResponse("/console/sign-in", status_code=303)
    response.delete_cookie(auth.COOKIE, path=auth.PATH)
    return response


@router.get("", response_class=HTMLResponse)
async def overview(request: Request, user: User, session: SessionDep) -> Response:
    days = await repo.orders_per_day(session, CHART_DAYS, get_settings(request).platform_time_zone)
    return page(request, "overview.html", user, chart=_chart(days))


def _chart(days: list[dict[str, object]]) -> dict[str, object]:
    """Bar geometry for two small server-rendered SVG charts (no script)."""
    width, height, gap = 28, 120, 6

    def bars(key: str) -> list[dict[str, object]]:
        top = max([int(str(d[key])) for d in days] + [1])
        return [
            {
                "x": i * (width + gap),
                "h": round(height * int(str(d[key])) / top),
                "value": d[key],
                "day": str(d["day"])[5:],
            }
            for i, d in enumerate(days)
        ]

    return {
        "orders": bars("orders"),
        "paid": bars("paid_minor"),
        "width": width,
        "height": height,
        "total_width": len(days) * (width + gap),
    }
