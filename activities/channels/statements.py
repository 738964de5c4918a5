"""Downloading a business day's statement from a channel or the bank, as each party serves it.

WeChat Pay answers the trade-bill query with the file's URL and SHA1, Alipay with a short-lived URL of
the zip (its token is the key, so that download is not signed), the bank with the CSV itself. "Bill
Creating" is a temporary state (``ChannelUnavailable``: retried politely, with backoff), "No Bill
Exist" is an empty day (``None``).
"""

from __future__ import annotations

import hashlib
from datetime import date
from typing import BinaryIO

import httpx

from activities.channels.errors import ChannelRejected, ChannelUnavailable
from activities.channels.payment import RETRYABLE_STATUSES, _json
from domain.signing import signed_headers, target_of

ALIPAY_METHOD = "alipay.data.dataservice.bill.downloadurl.query"
NO_BILL = "NO_STATEMENT_EXIST"
CHUNK = 1 << 20


class StatementClient:
    def __init__(self, base_url: str, secrets: dict[str, str], http: httpx.AsyncClient, timeout: float = 60) -> None:
        self.base_url = base_url.rstrip("/")
        self.secrets = secrets
        self._http = http
        self.timeout = timeout

    async def _get(self, party: str | None, target: str, out: BinaryIO | None = None) -> httpx.Response | None:
        """GET base_url + target (signed as `party` unless None); None for "No Bill Exist". With `out`, a
        successful body is streamed into it (a chunk in memory at a time) instead of being read."""
        url = self.base_url + target
        headers = signed_headers(self.secrets[party], "GET", url, b"") if party else {}
        try:
            async with self._http.stream("GET", url, headers=headers, timeout=self.timeout) as resp:
                if resp.is_success and out is not None:
                    async for chunk in resp.aiter_bytes(CHUNK):
                        out.write(chunk)
                else:
                    await resp.aread()
        except httpx.HTTPError as exc:
            raise ChannelUnavailable(f"GET {target}: {type(exc).__name__}: {exc}") from exc
        if resp.is_success:
            return resp
        data = _json(resp)
        code = str(data.get("code") or f"HTTP_{resp.status_code}")
        message = str(data.get("message") or resp.text[:200])
        if code == NO_BILL:
            return None
        if code == "STATEMENT_CREATING" or resp.status_code >= 500 or resp.status_code in RETRYABLE_STATUSES:
            raise ChannelUnavailable(f"{code}: {message}", status=resp.status_code, code=code)
        raise ChannelRejected(code, message, status=resp.status_code)

    async def download(self, source: str, day: date, out: BinaryIO) -> bool:
        """Write the day's statement file, as the party serves it, into `out`; False when the party has
        no bill for the day. Streamed: a statement of any size costs a chunk of memory."""
        if source == "wechat":
            answer = await self._get("wechat", f"/wechat/v3/bill/tradebill?bill_date={day}&bill_type=ALL")
            if answer is None:
                return False
            meta = _json(answer)
            start = out.tell()
            if await self._get("wechat", target_of(str(meta["download_url"])), out) is None:
                return False
            if _sha1_from(out, start) != meta.get("hash_value"):
                raise ChannelUnavailable("the bill downloaded does not have the SHA1 announced")
            return True
        if source == "alipay":
            query = f"/alipay/gateway.do?method={ALIPAY_METHOD}&bill_type=trade&bill_date={day}"
            answer = await self._get("alipay", query)
            if answer is None:
                return False
            meta = _json(answer).get("alipay_data_dataservice_bill_downloadurl_query_response", {})
            if meta.get("code") != "10000":
                raise ChannelRejected(str(meta.get("code")), str(meta.get("msg")))
            return await self._get(None, target_of(str(meta["bill_download_url"])), out) is not None
        if source == "bank":
            return await self._get("bank", f"/bank/v1/statements/payouts?date={day}", out) is not None
        raise ChannelRejected("UNKNOWN_SOURCE", f"no statement source {source!r}")


def _sha1_from(out: BinaryIO, start: int) -> str:
    """SHA1 of what was written to `out` from `start` on, read back a chunk at a time."""
    end = out.tell()
    out.seek(start)
    digest = hashlib.sha1()  # WeChat Pay announces its bills by SHA1
    while out.tell() < end and (chunk := out.read(min(CHUNK, end - out.tell()))):
        digest.update(chunk)
    return digest.hexdigest()
