"""Rendering console pages: the template, the person's labels and language, money and time helpers."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from fastapi import Request
from fastapi.responses import HTMLResponse
from fastapi.templating import Jinja2Templates

from api.console.auth import ConsoleUser
from api.console.calls import ApiAnswer
from api.console.i18n import age, labels, language, local, yuan, zone
from api.deps import get_settings

templates = Jinja2Templates(directory=str(Path(__file__).parent / "templates"))


def page(request: Request, name: str, user: ConsoleUser | None, status_code: int = 200, **context: Any) -> HTMLResponse:
    settings = get_settings(request)
    lang = language(request.headers.get("accept-language"))
    tz = zone(settings.platform_time_zone)
    now = datetime.now(UTC)
    return templates.TemplateResponse(
        request,
        name,
        {
            "user": user,
            "t": labels(lang),
            "lang": lang,
            "yuan": yuan,
            "local": lambda v: local(v, tz),
            "age": lambda v: age(v, now),
            "flash": request.query_params.get("done"),
            **context,
        },
        status_code=status_code,
    )


def refused(request: Request, user: ConsoleUser, answer: ApiAnswer) -> HTMLResponse:
    """The API said no: show its reason with its status (a forbidden page stays forbidden)."""
    return page(request, "refused.html", user, status_code=answer.status, reason=answer.reason)
