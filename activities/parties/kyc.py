"""The platform's client of the KYC provider: business licence, legal person identity and bank account
checks. Each request carries the platform's request number (the provider deduplicates on it); results
come back by signed callback and can be asked for with the same number."""

from __future__ import annotations

from typing import Any

from activities.parties.errors import PartyUnavailable
from activities.parties.signed import SignedPartyClient
from domain.merchants import KycCheck, KycResult


def _result(check: KycCheck, data: dict[str, Any]) -> KycResult:
    try:
        return KycResult(
            check=check, request_no=str(data["request_no"]), status=str(data["status"]), findings=data.get("findings")
        )
    except (KeyError, ValueError) as exc:
        raise PartyUnavailable(f"unreadable KYC answer: {exc}") from exc


class KycClient(SignedPartyClient):
    party = "kyc"

    async def submit(
        self, check: KycCheck, request_no: str, merchant_ref: str, subject: dict[str, str], notify_url: str
    ) -> KycResult:
        """`subject` holds the clear numbers the provider must see; they go over the wire and nowhere else."""
        data = await self.call(
            "POST",
            "/v1/checks",
            {
                "request_no": request_no,
                "check": check.value,
                "merchant_ref": merchant_ref,
                "subject": subject,
                "notify_url": notify_url,
            },
        )
        if data is None:
            raise PartyUnavailable("KYC provider answered 404 to a check request")
        return _result(check, data)

    async def query(self, check: KycCheck, request_no: str) -> KycResult | None:
        data = await self.call("GET", f"/v1/checks/{request_no}")
        return None if data is None else _result(check, data)
