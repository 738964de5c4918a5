"""Errors as RFC 9457 `application/problem+json`, with a `detail` a caller can act on."""

from __future__ import annotations

import logging
from http import HTTPStatus
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException
from temporalio.client import RPCTimeoutOrCancelledError
from temporalio.service import RPCError, RPCStatusCode

log = logging.getLogger(__name__)
PROBLEM = "application/problem+json"
RETRY_AFTER_SECONDS = 2
# Temporal answers that mean "not now", not "no": the request may be retried as it is.
UNAVAILABLE_RPC = (RPCStatusCode.DEADLINE_EXCEEDED, RPCStatusCode.UNAVAILABLE, RPCStatusCode.CANCELLED)


class ApiError(Exception):
    """A refusal with a status, a machine-readable code and a human-readable reason."""

    def __init__(self, status: int, code: str, detail: str, **extra: Any) -> None:
        super().__init__(detail)
        self.status = status
        self.code = code
        self.detail = detail
        self.extra = extra


def problem(status: int, detail: str, *, code: str | None = None, **extra: Any) -> JSONResponse:
    body: dict[str, Any] = {
        "type": "about:blank",
        "title": HTTPStatus(status).phrase,
        "status": status,
        "detail": detail,
    }
    if code:
        body["code"] = code
    body.update(extra)
    headers: dict[str, str] | None = None
    if status == 401:
        headers = {"WWW-Authenticate": "Bearer"}
    elif status == 503:
        # Unknown is not failed: the caller asks again (with the same Idempotency-Key) shortly.
        headers = {"Retry-After": str(RETRY_AFTER_SECONDS)}
    return JSONResponse(body, status_code=status, media_type=PROBLEM, headers=headers)


def _describe(errors: list[Any]) -> str:
    parts = []
    for err in errors:
        where = ".".join(str(p) for p in err.get("loc", ()) if p != "body") or "body"
        parts.append(f"{where}: {err.get('msg', 'invalid')}")
    return "; ".join(parts)


def install(app: FastAPI) -> None:
    @app.exception_handler(ApiError)
    async def _api_error(_: Request, exc: ApiError) -> JSONResponse:
        return problem(exc.status, exc.detail, code=exc.code, **exc.extra)

    @app.exception_handler(RequestValidationError)
    async def _invalid(_: Request, exc: RequestValidationError) -> JSONResponse:
        errors = [{k: v for k, v in e.items() if k in ("loc", "msg", "type")} for e in exc.errors()]
        return problem(422, _describe(errors), code="INVALID_REQUEST", errors=errors)

    @app.exception_handler(StarletteHTTPException)
    async def _http(_: Request, exc: StarletteHTTPException) -> JSONResponse:
        return problem(exc.status_code, str(exc.detail))

    @app.exception_handler(RPCTimeoutOrCancelledError)
    @app.exception_handler(TimeoutError)
    async def _no_answer(request: Request, exc: Exception) -> JSONResponse:
        log.warning("no answer in time on %s %s: %r", request.method, request.url.path, exc)
        return problem(503, "no answer in time; retry (with the same Idempotency-Key)", code="NO_ANSWER")

    @app.exception_handler(RPCError)
    async def _rpc(request: Request, exc: RPCError) -> JSONResponse:
        if exc.status in UNAVAILABLE_RPC:
            return problem(503, f"Temporal did not answer ({exc.status.name}); retry", code="TEMPORAL_UNAVAILABLE")
        log.exception("Temporal refused %s %s", request.method, request.url.path)
        return problem(500, "internal error; it has been logged", code="INTERNAL")

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, exc: Exception) -> JSONResponse:
        log.exception("unhandled error on %s %s", request.method, request.url.path)
        return problem(500, "internal error; it has been logged", code="INTERNAL")
