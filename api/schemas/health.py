"""What GET /health answers (200 when both dependencies answer, 503 otherwise, with the same body)."""

from __future__ import annotations

from pydantic import BaseModel, Field


class Health(BaseModel):
    status: str = Field(description="ok or degraded")
    database: str = Field(description="ok, or down: <why>")
    temporal: str = Field(description="ok, or down: <why>")
