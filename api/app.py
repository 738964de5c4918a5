"""The FastAPI application factory."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import Depends, FastAPI, Request
from fastapi.responses import JSONResponse

from api import console, errors, metrics
from api.body_limit import BodyLimit
from api.routes import (
    api_keys,
    balances,
    callbacks,
    campaigns,
    commission_rules,
    discrepancies,
    health,
    ledger,
    merchants,
    ops,
    orders,
    providers,
    ready,
    recon,
    refunds,
    settlements,
    withdrawals,
)
from api.schemas.problem import ERROR_RESPONSES
from api.temporal_handle import TemporalHandle, TemporalUnavailable
from api.text_guard import refuse_unstorable_text
from db.engine import make_engine, make_session_factory
from domain.refusals import Refusal
from domain.settings import Settings, ensure_safe_to_start, get_settings


def create_app(settings: Settings | None = None) -> FastAPI:
    if settings is None:  # started from the environment (`python -m api`, `uvicorn --factory`)
        settings = get_settings()
        ensure_safe_to_start(settings, "the API")

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        if not settings.database_url:
            raise RuntimeError("BACKOFFICE_DATABASE_URL is not set (`ops dev` sets it for the embedded server)")
        engine = make_engine(settings.database_url)
        app.state.settings = settings
        app.state.session_factory = make_session_factory(engine)
        app.state.temporal = TemporalHandle(settings)
        try:
            yield
        finally:
            await engine.dispose()

    app = FastAPI(
        title="O2O back office",
        version="0.1.0",
        description="Orders, payments, refunds, merchant onboarding, settlement and withdrawals, "
        "run as Temporal workflows over a double-entry ledger.",
        lifespan=lifespan,
        dependencies=[Depends(refuse_unstorable_text)],
    )
    errors.install(app)
    metrics.install(app)
    app.add_middleware(BodyLimit, prefix="/v1/callbacks", max_bytes=settings.callback_max_body_bytes)

    @app.exception_handler(TemporalUnavailable)
    async def _temporal_down(_: Request, exc: TemporalUnavailable) -> JSONResponse:
        return errors.refusal(Refusal.TEMPORAL_UNAVAILABLE, str(exc))

    for module in (
        health,
        ready,
        api_keys,
        ledger,
        callbacks,
        orders,
        refunds,
        commission_rules,
        campaigns,
        settlements,
        merchants,
        balances,
        withdrawals,
        ops,
        recon,
        discrepancies,
        providers,
    ):
        # Every route documents the problem+json answers it may give; a route's own entries win.
        app.include_router(module.router, responses=ERROR_RESPONSES)
    console.install(app)
    return app
