"""Shared path parameters: a database id in a path is bounded, so a huge one is a 422, not a 500."""

from __future__ import annotations

from typing import Annotated

from fastapi import Path

BIGINT_MAX = 2**63 - 1

DbId = Annotated[int, Path(ge=1, le=BIGINT_MAX, description="a numeric id (1 to 2^63-1)")]
