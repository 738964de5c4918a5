"""Every console action and most reads are API calls, made in-process with the key the person signed in
with: the console has no second path to money, and sees exactly what that key may see and do."""

from __future__ import annotations

from typing import Any

import httpx
from fastapi import Request

from api.console.auth import ConsoleUser


class ApiAnswer:
    def __init__(self, response: httpx.Response) -> None:
        self.status = response.status_code
        self.ok = response.is_success
        self.text = response.text
        self.body: Any = response.json() if "json" in response.headers.get("content-type", "") else None

    @property
    def reason(self) -> str:
        """A refusal as the API said it: code and detail (problem+json)."""
        if isinstance(self.body, dict):
            detail = self.body.get("detail")
            if isinstance(detail, list):  # a validation error: name the fields
                detail = "; ".join(f"{'.'.join(map(str, d.get('loc', [])))}: {d.get('msg')}" for d in detail)
            return f"{self.body.get('code', self.status)}: {detail}"
        return f"{self.status}: {self.text[:200]}"


async def api(
    request: Request, user: ConsoleUser, method: str, path: str, *, json: Any = None, params: Any = None
) -> ApiAnswer:
    transport = httpx.ASGITransport(app=request.app)
    async with httpx.AsyncClient(transport=transport, base_url="http://console.internal", timeout=60) as client:
        response = await client.request(
            method, path, json=json, params=params, headers={"Authorization": f"Bearer {user.api_key}"}
        )
    return ApiAnswer(response)
