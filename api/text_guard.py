"""One app-wide guard: text PostgreSQL cannot store, anywhere in a request, is a 422 that says where."""

from __future__ import annotations

import json

from fastapi import Request

from api.errors import ApiError
from domain.refusals import Refusal
from domain.text import find_unstorable, find_unstorable_pairs


async def refuse_unstorable_text(request: Request) -> None:
    """Runs before every route's own dependencies; FastAPI has already read (and cached) the body."""
    found = find_unstorable_pairs(request.query_params.multi_items(), "query") or find_unstorable_pairs(
        request.path_params.items(), "path"
    )
    content_type = request.headers.get("content-type", "")
    if found is None and content_type.startswith(("multipart/", "application/x-www-form-urlencoded")):
        # A form (the console's, an upload) was parsed by FastAPI already: its text fields are checked.
        form = await request.form()
        found = find_unstorable_pairs([(k, v) for k, v in form.multi_items() if isinstance(v, str)], "form")
    elif found is None:
        raw = await request.body()
        if raw:
            try:
                payload = json.loads(raw)
            except ValueError:
                payload = None  # not JSON: the route's own parsing says what is wrong with it
            found = find_unstorable(payload, "body")
    if found is not None:
        raise ApiError(Refusal.UNSTORABLE_TEXT, f"{found}; such text cannot be stored")
