"""The back-office console: server-rendered pages over the API, for finance, auditors and operators.

Pages read through the API with the signed-in person's key (a few queue reads the API has no list for
come from db/console.py, held to the same roles), and every button is the API call the API documents:
the console adds no second path for money."""

from __future__ import annotations

from fastapi import APIRouter, FastAPI, Request
from fastapi.responses import RedirectResponse, Response

from api.console import finance, home, operations, people
from api.console.auth import CsrfRefused, SignInRequired
from api.console.render import page

router = APIRouter(include_in_schema=False)
for module in (home, finance, people, operations):
    router.include_router(module.router)


def install(app: FastAPI) -> None:
    app.include_router(router)

    @app.exception_handler(SignInRequired)
    async def _sign_in(request: Request, _: SignInRequired) -> Response:
        return RedirectResponse("/console/sign-in", status_code=303)

    @app.exception_handler(CsrfRefused)
    async def _csrf(request: Request, _: CsrfRefused) -> Response:
        return page(request, "refused.html", None, status_code=403, reason="CSRF: this form is not from your session")
