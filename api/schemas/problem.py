"""The shape of every error answer (RFC 9457 problem details), documented on every route."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field

PROBLEM = "application/problem+json"


class FieldError(BaseModel):
    loc: list[str | int] = Field(description="where the bad value is, e.g. ['body', 'amount_minor']")
    msg: str
    type: str


class Problem(BaseModel):
    # Some refusals carry more (e.g. the flow's refusal code); a caller may ignore what it does not know.
    model_config = ConfigDict(extra="allow")

    type: str = Field(description="always about:blank: `code` says what went wrong")
    title: str = Field(description="the HTTP status phrase")
    status: int
    detail: str = Field(description="what is wrong, in words a caller can act on")
    code: str | None = Field(default=None, description="machine-readable reason, e.g. ORDER_NOT_FOUND")
    errors: list[FieldError] | None = Field(default=None, description="each invalid field (422 INVALID_REQUEST)")


_WHEN = {
    400: "the request is malformed",
    401: "no API key, or an unknown or revoked one (or a callback whose signature does not verify)",
    403: "the key's role may not do this, or the same person may not both make and check",
    404: "no such resource among those this key may see",
    409: "the resource is not in a state that allows this, or a concurrent request holds it",
    413: "the body is larger than allowed",
    422: "invalid input: the detail names the field",
    500: "an internal error; it has been logged",
    503: "the database or Temporal did not answer in time; retry (with the same Idempotency-Key)",
}


def _responses() -> dict[int | str, dict[str, Any]]:
    schema = Problem.model_json_schema(ref_template="#/components/schemas/{model}")
    # Inline, without $defs: the one nested model is spelled out so the schema stands alone.
    defs = schema.pop("$defs", {})
    schema["properties"]["errors"] = {
        "anyOf": [{"type": "array", "items": defs["FieldError"]}, {"type": "null"}],
        "description": schema["properties"]["errors"].get("description", ""),
    }
    return {
        status: {"description": f"Problem: {when}", "content": {PROBLEM: {"schema": schema}}}
        for status, when in _WHEN.items()
    }


ERROR_RESPONSES = _responses()
"""Every route may answer these (as application/problem+json): included app-wide with every router."""
