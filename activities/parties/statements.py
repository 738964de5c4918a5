"""Downloading a business day's statement from a channel or the bank, as each party serves it.

WeChat Pay answers the trade-bill query with the file's URL and SHA1, Alipay with a short-lived URL of
the zip (its token is the key, so that download is not signed), the bank with the CSV itself. "Bill
Creating" is a temporary state (``PartyUnavailable``: retried politely, with backoff), "No Bill
Exist" is an empty day (``None``).
"""

from __future__ import annotations

import hashlib
from datetime import date

import httpx

from activities.parties.errors import PartyRejected, PartyUnavailable
from activities.parties.signed import SignedPartyClient, json_of, refusal_of
from domain.signing import target_of

ALIPAY_METHOD = "alipay.data.dataservice.bill.downloadurl.query"
NO_BILL = "NO_STATEMENT_EXIST"
STATEMENT_CREATING = "STATEMENT_CREATING"


class StatementClient(SignedPartyClient):
    def __init__(self, base_url: str, secrets: dict[str, str], http: httpx.AsyncClient, timeout: float = 60) -> None:
        super().__init__(base_url, secrets, http, timeout)

    async def _get(self, party: str | None, target: str) -> httpx.Response | None:
        """GET base_url + target (signed as `party` unless None); None for "No Bill Exist"."""
        resp = await self.send("GET", target, signer=party)
        if resp.is_success:
            return resp
        if refusal_of(resp)[0] == NO_BILL:
            return None
        raise self.failure(resp, retry_codes=(STATEMENT_CREATING,))

    async def download(self, source: str, day: date) -> bytes | None:
        """The day's statement file as the party serves it, or None when it has no bill for the day."""
        if source == "wechat":
            answer = await self._get("wechat", f"/wechat/v3/bill/tradebill?bill_date={day}&bill_type=ALL")
            if answer is None:
                return None
            meta = json_of(answer)
            file = await self._get("wechat", target_of(str(meta["download_url"])))
            if file is None:
                return None
            if hashlib.sha1(file.content).hexdigest() != meta.get("hash_value"):
                raise PartyUnavailable("the bill downloaded does not have the SHA1 announced")
            return file.content
        if source == "alipay":
            query = f"/alipay/gateway.do?method={ALIPAY_METHOD}&bill_type=trade&bill_date={day}"
            answer = await self._get("alipay", query)
            if answer is None:
                return None
            meta = json_of(answer).get("alipay_data_dataservice_bill_downloadurl_query_response", {})
            if meta.get("code") != "10000":
                raise PartyRejected(str(meta.get("code")), str(meta.get("msg")))
            file = await self._get(None, target_of(str(meta["bill_download_url"])))
            return None if file is None else file.content
        if source == "bank":
            file = await self._get("bank", f"/bank/v1/statements/payouts?date={day}")
            return None if file is None else file.content
        raise PartyRejected("UNKNOWN_SOURCE", f"no statement source {source!r}")
