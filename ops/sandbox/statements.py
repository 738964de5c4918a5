"""Each business day's statements (Asia/Shanghai), built from the sandbox's own records.

- WeChat Pay: ``GET /wechat/v3/bill/tradebill?bill_date=YYYY-MM-DD&bill_type=ALL|SUCCESS|REFUND``
  (signed) → ``{hash_type: "SHA1", hash_value, download_url}``; ``GET download_url`` (signed) is the
  file. Knob ``legacy_bill`` serves the legacy 24-column layout.
- Alipay: ``GET /alipay/gateway.do?method=alipay.data.dataservice.bill.downloadurl.query&bill_type=trade
  &bill_date=YYYY-MM-DD`` (signed) → ``{alipay_data_dataservice_bill_downloadurl_query_response:
  {code: "10000", msg: "Success", bill_download_url}}``; the URL (unsigned, an unguessable token, as
  Alipay's short-lived links are) serves the ``.csv.zip``.
- Bank: ``GET /bank/v1/statements/payouts?date=YYYY-MM-DD`` (signed) → the CSV itself.

Refusals use the sandbox's one error shape: 400 ``STATEMENT_CREATING`` "Bill Creating" while the
party's ``bill_creating`` knob is set, 400 ``NO_STATEMENT_EXIST`` "No Bill Exist" for a day without
rows. A payment is on the day it was paid, a refund on the day it was requested (only once it has
succeeded at the party), a payout on the day the bank finished it; the quirks (ops/sandbox/quirks.py)
move a row to the next day, change its amount or show it twice. Fees are at the party's
``fee_rate_bp``, rounded half-up to the fen per row (a refund gives its share back). A file is stored
when first served, so the download is the very bytes whose hash was announced.
"""

from __future__ import annotations

import hashlib
import io
import time
from collections.abc import Iterable
from datetime import date, datetime, timedelta
from typing import Any

from fastapi import APIRouter, Query, Request
from fastapi.responses import Response

from domain.money import apply_bps
from domain.recon.lines import FEE_UNITS_PER_MINOR, SHANGHAI, LineKind, Source, StatementLine, business_day_bounds
from ops.sandbox import quirks
from ops.sandbox.context import SandboxContext, context
from ops.sandbox.errors import SandboxError, invalid
from ops.sandbox.faults import Faults
from ops.sandbox.gate import verified
from ops.sandbox.statement_files import write_alipay_zip, write_bank, write_wechat
from ops.sandbox.store import Store, iso, new_id

SCHEMA = """
CREATE TABLE IF NOT EXISTS statement_files (
    token TEXT PRIMARY KEY, party TEXT NOT NULL, bill_date TEXT NOT NULL, bill_type TEXT NOT NULL,
    sha1 TEXT NOT NULL, content BLOB NOT NULL, created_at TEXT NOT NULL,
    UNIQUE (party, bill_date, bill_type, sha1)
);
CREATE TABLE IF NOT EXISTS prepared_statements (
    party TEXT NOT NULL, bill_date TEXT NOT NULL, bill_type TEXT NOT NULL, token TEXT NOT NULL,
    PRIMARY KEY (party, bill_date, bill_type)
)
"""
ALIPAY_METHOD = "alipay.data.dataservice.bill.downloadurl.query"
ALIPAY_PID = "2088102180000156"
WECHAT_TYPES = ("ALL", "SUCCESS", "REFUND")
PAY_STATUS = {"wechat": "SUCCESS", "alipay": "交易"}
REFUND_STATUS = {"wechat": "SUCCESS", "alipay": "退款"}

router = APIRouter(tags=["statements"])


def day_of(text: str) -> date:
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise invalid(f"bill_date {text!r} is not YYYY-MM-DD") from None


def _at(stored: str) -> datetime:
    return datetime.fromisoformat(stored).astimezone(SHANGHAI)


def _billed_on(at: str, marks: dict[str, int]) -> date:
    return (_at(at) + timedelta(days=1 if quirks.NEXT_DAY in marks else 0)).date()


def _window(store: Store, sql: str, day: date, *params: Any) -> list[dict[str, Any]]:
    """Rows stamped from the day before (a row may be moved a day) to just past the day's end; the
    caller picks the day's own in Python (stamps are ISO text, compared here only to narrow down)."""
    start, end = business_day_bounds(day)
    return store.all(sql, *params, iso((start - timedelta(days=1)).timestamp()), iso(end.timestamp() + 1))


def channel_lines(store: Store, channel: str, day: date, fee_rate_bp: int) -> list[StatementLine]:
    marks = quirks.all_marks(store, channel)
    source = Source(channel)
    lines: list[StatementLine] = []

    def fee(amount: int) -> int:
        return apply_bps(amount, fee_rate_bp) * FEE_UNITS_PER_MINOR

    paid = _window(
        store,
        "SELECT * FROM orders WHERE channel = ? AND status = 'SUCCESS' AND paid_at >= ? AND paid_at < ?",
        day,
        channel,
    )
    for o in paid:
        m = marks.get(o["out_trade_no"], {})
        if _billed_on(o["paid_at"], m) != day:
            continue
        amount = max(1, o["amount_minor"] + m.get(quirks.AMOUNT_DELTA, 0))
        copies = [o["channel_txn_id"], o["channel_txn_id"] + "2"] if quirks.DUPLICATE in m else [o["channel_txn_id"]]
        for txn in copies:
            lines.append(
                StatementLine(
                    source,
                    LineKind.PAYMENT,
                    0,
                    o["out_trade_no"],
                    None,
                    txn,
                    PAY_STATUS[channel],
                    amount,
                    fee(amount),
                    o["currency"],
                    _at(o["paid_at"]),
                )
            )
    refunds = _window(
        store,
        "SELECT r.*, o.channel_txn_id FROM refunds r JOIN orders o USING (channel, out_trade_no)"
        " WHERE r.channel = ? AND r.status = 'SUCCESS' AND r.created_at >= ? AND r.created_at < ?",
        day,
        channel,
    )
    for r in refunds:
        if _billed_on(r["created_at"], marks.get(r["out_refund_no"], {})) != day:
            continue
        lines.append(
            StatementLine(
                source,
                LineKind.REFUND,
                0,
                r["out_refund_no"],
                r["out_trade_no"],
                r["channel_txn_id"],
                REFUND_STATUS[channel],
                r["amount_minor"],
                -fee(r["amount_minor"]),
                r["currency"],
                _at(r["created_at"]),
            )
        )
    return sorted(lines, key=lambda x: (x.occurred_at, x.kind, x.our_no, x.party_no))


def payout_lines(store: Store, day: date) -> tuple[list[StatementLine], dict[str, str]]:
    rows = _window(
        store,
        "SELECT * FROM bank_payouts WHERE status IN ('PAID', 'FAILED') AND finished_at >= ? AND finished_at < ?",
        day,
    )
    lines = [
        StatementLine(
            Source.BANK,
            LineKind.PAYOUT,
            0,
            r["payout_no"],
            None,
            r["bank_ref"] or "",
            r["status"],
            r["amount_minor"],
            0,
            r["currency"],
            _at(r["finished_at"]),
        )
        for r in rows
        if _at(r["finished_at"]).date() == day
    ]
    return sorted(lines, key=lambda x: (x.occurred_at, x.our_no)), {r["payout_no"]: r["batch_no"] for r in rows}


def _ready(faults: Faults, lines: list[StatementLine]) -> None:
    if faults.bill_creating:
        raise SandboxError(400, "STATEMENT_CREATING", "Bill Creating")
    if not lines:
        raise SandboxError(400, "NO_STATEMENT_EXIST", "No Bill Exist")


def _keep(store: Store, party: str, day: date, bill_type: str, chunks: Iterable[bytes]) -> dict[str, Any]:
    """Store a file once per content; the same day and content always answer the same token."""
    content = b"".join(chunks)
    sha1 = hashlib.sha1(content).hexdigest()  # WeChat Pay announces its bills by SHA1
    with store.tx() as db:
        db.execute(
            "INSERT OR IGNORE INTO statement_files (token, party, bill_date, bill_type, sha1, content, created_at)"
            " VALUES (?, ?, ?, ?, ?, ?, ?)",
            (new_id("bill_"), party, day.isoformat(), bill_type, sha1, content, iso(time.time())),
        )
    row = store.one(
        "SELECT token, sha1 FROM statement_files WHERE party = ? AND bill_date = ? AND bill_type = ? AND sha1 = ?",
        party,
        day.isoformat(),
        bill_type,
        sha1,
    )
    assert row is not None
    return row


def prepare(store: Store, party: str, day: date, bill_type: str, content: bytes) -> dict[str, Any]:
    """A bill the party has already written (`PUT /_sandbox/statements/...`): served for that day
    instead of one built from the records, so a benchmark can bill a million rows it never paid."""
    kept = _keep(store, party, day, bill_type, [content])
    with store.tx() as db:
        db.execute(
            "INSERT OR REPLACE INTO prepared_statements (party, bill_date, bill_type, token) VALUES (?, ?, ?, ?)",
            (party, day.isoformat(), bill_type, kept["token"]),
        )
    return kept


def _prepared(store: Store, party: str, day: date, bill_type: str) -> dict[str, Any] | None:
    return store.one(
        "SELECT f.token, f.sha1 FROM prepared_statements p JOIN statement_files f USING (token)"
        " WHERE p.party = ? AND p.bill_date = ? AND p.bill_type = ?",
        party,
        day.isoformat(),
        bill_type,
    )


def _file(store: Store, party: str, token: str) -> bytes:
    row = store.one("SELECT content FROM statement_files WHERE party = ? AND token = ?", party, token)
    if row is None:
        raise SandboxError(404, "NO_STATEMENT_EXIST", "No Bill Exist")
    content: bytes = row["content"]
    return content


def _public(ctx: SandboxContext) -> str:
    return ctx.book.public_url


@router.get("/wechat/v3/bill/tradebill")
async def wechat_tradebill(request: Request, bill_date: str, bill_type: str = "ALL") -> dict[str, Any]:
    ctx, faults, _ = await verified(request, "wechat")
    day = day_of(bill_date)
    if bill_type not in WECHAT_TYPES:
        raise invalid(f"bill_type {bill_type!r} is not one of {', '.join(WECHAT_TYPES)}")
    kept = _prepared(ctx.store, "wechat", day, bill_type)
    if kept is None:
        wanted = {
            "ALL": (LineKind.PAYMENT, LineKind.REFUND),
            "SUCCESS": (LineKind.PAYMENT,),
            "REFUND": (LineKind.REFUND,),
        }
        lines = [x for x in channel_lines(ctx.store, "wechat", day, faults.fee_rate_bp) if x.kind in wanted[bill_type]]
        _ready(faults, lines)
        layout = "LEGACY" if faults.legacy_bill else bill_type
        kept = _keep(ctx.store, "wechat", day, layout, write_wechat(lines, layout, rate_bp=faults.fee_rate_bp))
    url = f"{_public(ctx)}/wechat/v3/billdownload/file?token={kept['token']}"
    return {"hash_type": "SHA1", "hash_value": kept["sha1"], "download_url": url}


@router.get("/wechat/v3/billdownload/file")
async def wechat_download(request: Request, token: str) -> Response:
    ctx, _, _ = await verified(request, "wechat")
    return Response(_file(ctx.store, "wechat", token), media_type="application/octet-stream")


@router.get("/alipay/gateway.do")
async def alipay_gateway(request: Request, method: str, bill_date: str, bill_type: str = "trade") -> dict[str, Any]:
    ctx, faults, _ = await verified(request, "alipay")
    if method != ALIPAY_METHOD:
        raise invalid(f"the sandbox's Alipay gateway has no method {method!r}")
    if bill_type != "trade":
        raise invalid(f"bill_type {bill_type!r}: the sandbox serves only 'trade' bills")
    day = day_of(bill_date)
    lines = channel_lines(ctx.store, "alipay", day, faults.fee_rate_bp)
    _ready(faults, lines)
    zipped = io.BytesIO()
    exported = datetime(day.year, day.month, day.day, 9, tzinfo=SHANGHAI) + timedelta(days=1)
    write_alipay_zip(zipped, lines, pid=ALIPAY_PID, day=day, exported_at=exported)
    kept = _keep(ctx.store, "alipay", day, bill_type, [zipped.getvalue()])
    url = f"{_public(ctx)}/alipay/bills/{kept['token']}.csv.zip"
    answer = {"code": "10000", "msg": "Success", "bill_download_url": url}
    return {method.replace(".", "_") + "_response": answer}


@router.get("/alipay/bills/{token}.csv.zip")
async def alipay_download(token: str, request: Request) -> Response:
    """Unsigned, as Alipay's short-lived download links are: the token is the secret."""
    content = _file(context(request).store, "alipay", token)
    return Response(content, media_type="application/zip")


@router.get("/bank/v1/statements/payouts")
async def bank_statement(request: Request, value_date: str = Query(alias="date")) -> Response:
    ctx, faults, _ = await verified(request, "bank")
    day = day_of(value_date)
    lines, batches = payout_lines(ctx.store, day)
    _ready(faults, lines)
    kept = _keep(ctx.store, "bank", day, "payouts", write_bank(lines, batches=batches))
    return Response(_file(ctx.store, "bank", kept["token"]), media_type="text/csv; charset=utf-8")
