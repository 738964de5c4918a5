"""The platform's client of the bank's payout service. A batch carries the platform's batch number and
one payout number per transfer (the withdrawal id): the bank deduplicates on them, so resubmitting a
batch after a crash pays nobody twice. Results come by signed callback and by querying the batch."""

from __future__ import annotations

from typing import Any

from activities.parties.errors import PartyUnavailable
from activities.parties.signed import SignedPartyClient
from domain.withdrawals import BankPayoutItem


def _items(data: dict[str, Any]) -> list[BankPayoutItem]:
    try:
        return [BankPayoutItem.model_validate(i) for i in data["items"]]
    except (KeyError, TypeError, ValueError) as exc:
        raise PartyUnavailable(f"unreadable bank answer: {exc}") from exc


class BankClient(SignedPartyClient):
    party = "bank"

    async def submit_batch(self, batch_no: str, items: list[dict[str, Any]], notify_url: str) -> list[BankPayoutItem]:
        """`items` hold the clear account numbers the bank must see; they go over the wire and nowhere else."""
        data = await self.call(
            "POST", "/v1/payout-batches", {"batch_no": batch_no, "notify_url": notify_url, "items": items}
        )
        if data is None:
            raise PartyUnavailable("the bank answered 404 to a payout batch")
        return _items(data)

    async def query_batch(self, batch_no: str) -> list[BankPayoutItem] | None:
        data = await self.call("GET", f"/v1/payout-batches/{batch_no}")
        return None if data is None else _items(data)
