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

from domain.refusals import Refusal, Refused

log = logging.getLogger(__name__)
PROBLEM = "application/problem+json"
RETRY_AFTER_SECONDS = 2
# Temporal answers that mean "not now", not "no": the request may be retried as it is.
UNAVAILABLE_RPC = (RPCStatusCode.DEADLINE_EXCEEDED, RPCStatusCode.UNAVAILABLE, RPCStatusCode.CANCELLED)


# The one table from refusal code to HTTP status. A code from a flow that is not listed is a 409: the
# request conflicts with where the flow is.
STATUS: dict[Refusal, int] = {
    Refusal.INVALID_NOTIFICATION: 400,
    Refusal.IDEMPOTENCY_KEY_REQUIRED: 400,
    Refusal.IDEMPOTENCY_KEY_INVALID: 400,
    Refusal.UNAUTHENTICATED: 401,
    Refusal.SIGNATURE_INVALID: 401,
    Refusal.FORBIDDEN: 403,
    Refusal.SAME_PERSON: 403,
    Refusal.SAME_AUDITOR: 403,
    Refusal.NOT_AN_AUDITOR: 403,
    Refusal.NOT_FOUND: 404,
    Refusal.API_KEY_NOT_FOUND: 404,
    Refusal.CYCLE_NOT_FOUND: 404,
    Refusal.MERCHANT_NOT_FOUND: 404,
    Refusal.ORDER_NOT_FOUND: 404,
    Refusal.REFUND_NOT_FOUND: 404,
    Refusal.RULE_NOT_FOUND: 404,
    Refusal.STATEMENT_NOT_FOUND: 404,
    Refusal.WITHDRAWAL_NOT_FOUND: 404,
    Refusal.RUN_NOT_FOUND: 404,
    Refusal.DISCREPANCY_NOT_FOUND: 404,
    Refusal.PROVIDER_NOT_FOUND: 404,
    Refusal.CAMPAIGN_NOT_FOUND: 404,
    Refusal.COUPON_NOT_FOUND: 404,
    Refusal.FILE_NOT_FOUND: 404,
    Refusal.UNKNOWN_PARTY: 404,
    Refusal.BODY_TOO_LARGE: 413,
    Refusal.FILE_TOO_LARGE: 413,
    Refusal.INVALID_REQUEST: 422,
    Refusal.EMPTY_FILE: 422,
    Refusal.STATEMENT_REFUSED: 422,
    Refusal.UNSTORABLE_TEXT: 422,
    Refusal.IDEMPOTENCY_KEY_REUSED: 422,
    Refusal.NOTIFICATION_REFUSED: 422,
    Refusal.CODE_MISMATCH: 422,
    Refusal.CATEGORY_CHANGED: 422,
    Refusal.CUTOFF_IN_FUTURE: 422,
    Refusal.UNKNOWN_CATEGORY: 422,
    Refusal.UNKNOWN_CHANNEL: 422,
    Refusal.WRONG_CURRENCY: 422,
    Refusal.AMOUNT_OUT_OF_RANGE: 422,
    Refusal.REFUND_EXCEEDS_REFUNDABLE: 422,
    Refusal.ADJUSTMENT_TOO_LARGE: 422,
    Refusal.INSUFFICIENT_BALANCE: 422,
    Refusal.DAILY_LIMIT_EXCEEDED: 422,
    Refusal.DISCOUNT_NOT_ACCEPTED: 422,
    Refusal.COUPON_NOT_YOURS: 422,
    Refusal.CAMPAIGN_NOT_ACTIVE: 422,
    Refusal.COUPON_NOT_APPLICABLE: 422,
    Refusal.BELOW_THRESHOLD: 422,
    Refusal.COUPON_NOT_STACKABLE: 422,
    Refusal.COUPON_ALREADY_USED: 409,
    Refusal.CUSTOMER_LIMIT_REACHED: 409,
    Refusal.BUDGET_EXHAUSTED: 409,
    Refusal.INTERNAL: 500,
    Refusal.PAYMENT_UNAVAILABLE: 503,
    Refusal.TEMPORAL_UNAVAILABLE: 503,
    Refusal.FLOW_NO_ANSWER: 503,
    Refusal.NO_ANSWER: 503,
}


def status_of(code: str) -> int:
    return STATUS.get(code, 409)  # type: ignore[call-overload]


def refusal(code: Refusal, detail: str, **extra: Any) -> JSONResponse:
    """The problem+json answer to a refusal, its status from the table."""
    return problem(status_of(code), detail, code=code, **extra)


class ApiError(Refused):
    """A refusal the API itself makes, with extra members for the problem body."""

    def __init__(self, code: Refusal, detail: str, **extra: Any) -> None:
        super().__init__(code, detail)
        self.extra = extra

    @property
    def status(self) -> int:
        return status_of(self.code)


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
    @app.exception_handler(Refused)
    async def _refused(_: Request, exc: Refused) -> JSONResponse:
        extra = exc.extra if isinstance(exc, ApiError) else {}
        return refusal(exc.code, exc.detail, **extra)

    @app.exception_handler(RequestValidationError)
    async def _invalid(_: Request, exc: RequestValidationError) -> JSONResponse:
        errors = [{k: v for k, v in e.items() if k in ("loc", "msg", "type")} for e in exc.errors()]
        return refusal(Refusal.INVALID_REQUEST, _describe(errors), errors=errors)

    @app.exception_handler(StarletteHTTPException)
    async def _http(_: Request, exc: StarletteHTTPException) -> JSONResponse:
        return problem(exc.status_code, str(exc.detail))

    @app.exception_handler(RPCTimeoutOrCancelledError)
    @app.exception_handler(TimeoutError)
    async def _no_answer(request: Request, exc: Exception) -> JSONResponse:
        log.warning("no answer in time on %s %s: %r", request.method, request.url.path, exc)
        return refusal(Refusal.NO_ANSWER, "no answer in time; retry (with the same Idempotency-Key)")

    @app.exception_handler(RPCError)
    async def _rpc(request: Request, exc: RPCError) -> JSONResponse:
        if exc.status in UNAVAILABLE_RPC:
            return refusal(Refusal.TEMPORAL_UNAVAILABLE, f"Temporal did not answer ({exc.status.name}); retry")
        log.exception("Temporal refused %s %s", request.method, request.url.path)
        return refusal(Refusal.INTERNAL, "internal error; it has been logged")

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, exc: Exception) -> JSONResponse:
        log.exception("unhandled error on %s %s", request.method, request.url.path)
        return refusal(Refusal.INTERNAL, "internal error; it has been logged")
