"""Downloading a business day's statement from a channel or the bank, as each party serves it.

WeChat Pay answers the trade-bill query with the file's URL and SHA1, Alipay with a short-lived URL of
the zip (its token is the key, so that download is not signed), the bank with the CSV itself. "Bill
Creating" is a temporary state (``PartyUnavailable``: retried politely, with backoff), "No Bill
Exist" is an empty day (False). The file is streamed into the caller's spool, never held whole.
"""

from __future__ import annotations

import hashlib
from datetime import date
from typing import BinaryIO

import httpx

from activities.parties.errors import PartyRejected, PartyUnavailable
from activities.parties.signed import STREAM_CHUNK, SignedPartyClient, json_of, refusal_of
from domain.signing import target_of

ALIPAY_METHOD = "alipay.data.dataservice.bill.downloadurl.query"
NO_BILL = "NO_STATEMENT_EXIST"
STATEMENT_CREATING = "STATEMENT_CREATING"


class StatementClient(SignedPartyClient):
    def __init__(self, base_url: str, secrets: dict[str, str], http: httpx.AsyncClient, timeout: float = 60) -> None:
        super().__init__(base_url, secrets, http, timeout)

    async def _get(self, party: str | None, target: str, out: BinaryIO | None = None) -> httpx.Response | None:
        """GET base_url + target (signed as `party` unless None); None for "No Bill Exist". With `out`, a
        successful body is streamed into it instead of being read."""
        resp = await self.send("GET", target, signer=party, out=out)
        if resp.is_success:
            return resp
        if refusal_of(resp)[0] == NO_BILL:
            return None
        raise self.failure(resp, retry_codes=(STATEMENT_CREATING,))

    async def download(self, source: str, day: date, out: BinaryIO) -> bool:
        """Write the day's statement file, as the party serves it, into `out`; False when it has no bill."""
        if source == "wechat":
            answer = await self._get("wechat", f"/wechat/v3/bill/tradebill?bill_date={day}&bill_type=ALL")
            if answer is None:
                return False
            meta = json_of(answer)
            start = out.tell()
            if await self._get("wechat", target_of(str(meta["download_url"])), out) is None:
                return False
            if _sha1_from(out, start) != meta.get("hash_value"):
                raise PartyUnavailable("the bill downloaded does not have the SHA1 announced")
            return True
        if source == "alipay":
            query = f"/alipay/gateway.do?method={ALIPAY_METHOD}&bill_type=trade&bill_date={day}"
            answer = await self._get("alipay", query)
            if answer is None:
                return False
            meta = json_of(answer).get("alipay_data_dataservice_bill_downloadurl_query_response", {})
            if meta.get("code") != "10000":
                raise PartyRejected(str(meta.get("code")), str(meta.get("msg")))
            return await self._get(None, target_of(str(meta["bill_download_url"])), out) is not None
        if source == "bank":
            return await self._get("bank", f"/bank/v1/statements/payouts?date={day}", out) is not None
        raise PartyRejected("UNKNOWN_SOURCE", f"no statement source {source!r}")


def _sha1_from(out: BinaryIO, start: int) -> str:
    """SHA1 of what was written to `out` from `start` on, read back a chunk at a time."""
    end = out.tell()
    out.seek(start)
    digest = hashlib.sha1()  # WeChat Pay announces its bills by SHA1
    while out.tell() < end and (chunk := out.read(min(STREAM_CHUNK, end - out.tell()))):
        digest.update(chunk)
    return digest.hexdigest()
