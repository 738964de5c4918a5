"""The one error shape every sandbox endpoint answers with: ``{"code", "message", ...}`` and a status.

Real channels answer business refusals with a code the caller branches on, so the sandbox does too;
``extra`` carries what a caller needs to act on the refusal (e.g. the paid order on ``ORDER_PAID``).
"""

from __future__ import annotations

from typing import Any

from fastapi.responses import JSONResponse


class SandboxError(Exception):
    def __init__(self, http_status: int, code: str, message: str, **extra: Any) -> None:
        super().__init__(message)
        self.http_status = http_status
        self.code = code
        self.message = message
        self.extra = extra

    def response(self) -> JSONResponse:
        body = {"code": self.code, "message": self.message, **self.extra}
        return JSONResponse(body, status_code=self.http_status)


def invalid(message: str) -> SandboxError:
    return SandboxError(422, "INVALID_REQUEST", message)


def unknown_party(party: str) -> SandboxError:
    return SandboxError(404, "PARTY_NOT_FOUND", f"the sandbox has no party {party!r}")
