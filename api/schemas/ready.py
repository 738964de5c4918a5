"""What GET /ready answers (200 when every task queue has worker pollers, 503 otherwise, same body)."""

from __future__ import annotations

from pydantic import BaseModel, Field


class Readiness(BaseModel):
    ready: bool
    problem: str | None = Field(default=None, description="why not ready")
    pollers: dict[str, dict[str, int]] = Field(
        default_factory=dict, description="per task queue, recent pollers per kind (workflow, activity)"
    )
