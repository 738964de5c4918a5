"""The platform's client of the e-sign provider: a contract per merchant (the platform's request number
makes a repeated create return the same contract), a `sign_url` for the merchant, a signed callback."""

from __future__ import annotations

from typing import Any

from activities.parties.errors import PartyUnavailable
from activities.parties.signed import SignedPartyClient
from domain.merchants import Contract


def _contract(data: dict[str, Any]) -> Contract:
    try:
        return Contract.model_validate(data)
    except ValueError as exc:
        raise PartyUnavailable(f"unreadable e-sign answer: {exc}") from exc


class ESignClient(SignedPartyClient):
    party = "esign"

    async def create(self, request_no: str, merchant_ref: str, title: str, notify_url: str) -> Contract:
        data = await self.call(
            "POST",
            "/v1/contracts",
            {"request_no": request_no, "merchant_ref": merchant_ref, "title": title, "notify_url": notify_url},
        )
        if data is None:
            raise PartyUnavailable("e-sign provider answered 404 to a contract request")
        return _contract(data)

    async def query(self, request_no: str) -> Contract | None:
        data = await self.call("GET", f"/v1/contracts/{request_no}")
        return None if data is None else _contract(data)
