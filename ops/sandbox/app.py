"""The sandbox app: the stand-in outside world (payment channels, bank, KYC, e-sign) as one FastAPI service."""

from __future__ import annotations

import asyncio
import contextlib
import os
from collections.abc import AsyncIterator
from pathlib import Path

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from domain.settings import get_settings
from ops.sandbox import admin, bank, channels, esign, kyc, quirks, statements
from ops.sandbox.channel_refunds import ChannelBook
from ops.sandbox.context import SandboxContext
from ops.sandbox.errors import SandboxError
from ops.sandbox.notifier import Notifier
from ops.sandbox.store import Store

RETRY_BASE_ENV = "SANDBOX_RETRY_BASE_MS"


def create_app(
    db_path: Path, public_url: str, *, secrets: dict[str, str] | None = None, retry_base_ms: int | None = None
) -> FastAPI:
    """``public_url`` is the address customers (and tests) reach the sandbox at; pay_urls are built on it.
    ``retry_base_ms`` (default env SANDBOX_RETRY_BASE_MS, else 1000) lets tests shrink callback backoff."""
    if retry_base_ms is None:
        retry_base_ms = int(os.environ.get(RETRY_BASE_ENV, "1000"))
    party_secrets = dict(get_settings().party_secrets if secrets is None else secrets)

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        store = Store(db_path)
        for schema in (kyc.SCHEMA, esign.SCHEMA, bank.SCHEMA, quirks.SCHEMA, statements.SCHEMA):
            kyc.ensure_schema(store, schema)
        app.state.public_url = public_url
        book = ChannelBook(store, public_url)

        def resolve_due() -> None:
            book.resolve_due_refunds()
            bank.resolve_due_payouts(store)

        notifier = Notifier(store, party_secrets, retry_base_s=retry_base_ms / 1000, before_tick=resolve_due)
        app.state.sandbox = SandboxContext(store=store, book=book, notifier=notifier, secrets=party_secrets)
        task = asyncio.create_task(notifier.run(), name="sandbox-notifier")
        try:
            yield
        finally:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
            store.close()

    app = FastAPI(title="O2O back office sandbox (outside world)", lifespan=lifespan)

    @app.exception_handler(SandboxError)
    async def sandbox_error(_: Request, exc: SandboxError) -> JSONResponse:
        return exc.response()

    # Keep the one error shape even for FastAPI's own refusals (unknown route, bad query parameter).
    @app.exception_handler(StarletteHTTPException)
    async def http_error(_: Request, exc: StarletteHTTPException) -> JSONResponse:
        code = "NOT_FOUND" if exc.status_code == 404 else "HTTP_ERROR"
        return JSONResponse({"code": code, "message": str(exc.detail)}, status_code=exc.status_code)

    @app.exception_handler(RequestValidationError)
    async def validation_error(_: Request, exc: RequestValidationError) -> JSONResponse:
        return JSONResponse({"code": "INVALID_REQUEST", "message": str(exc.errors())}, status_code=422)

    @app.get("/health")
    async def health() -> dict[str, str]:
        return {"status": "ok"}

    # Control routes first: "/_sandbox/..." must never be read as a channel called "_sandbox".
    app.include_router(admin.router)
    app.include_router(kyc.router)
    app.include_router(esign.router)
    app.include_router(bank.router)
    app.include_router(statements.router)
    app.include_router(channels.router)
    return app
