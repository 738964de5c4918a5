"""The KYC provider: business licence, legal person identity and bank account checks.

A check is answered PROCESSING at once and its result goes out by signed callback (``kyc.completed``);
``GET`` with the platform's request number tells the result too. The outcome is fixed when the check is
requested (knob ``kyc_result``: pass | mismatch), as at a real provider. The provider keeps only the last
four characters of the numbers it was shown: its state is no place for clear identity numbers either.
"""

from __future__ import annotations

import time
from typing import Any, Literal

from fastapi import APIRouter, Request
from pydantic import BaseModel, ConfigDict, Field

from ops.sandbox.context import context
from ops.sandbox.errors import SandboxError, invalid
from ops.sandbox.gate import parse, verified
from ops.sandbox.store import Store, iso, new_id

SCHEMA = """
CREATE TABLE IF NOT EXISTS kyc_checks (
    request_no TEXT PRIMARY KEY, check_id TEXT NOT NULL UNIQUE, kind TEXT NOT NULL, merchant_ref TEXT NOT NULL,
    subject_tail TEXT NOT NULL, status TEXT NOT NULL, findings TEXT, notify_url TEXT NOT NULL,
    created_at TEXT NOT NULL, request_calls INTEGER NOT NULL DEFAULT 1, query_calls INTEGER NOT NULL DEFAULT 0
);
"""
REQUIRED = {
    "licence": ("business_name", "licence_no"),
    "identity": ("name", "id_no"),
    "bank": ("account_name", "account_no", "bank_name"),
}
NUMBER = {"licence": "licence_no", "identity": "id_no", "bank": "account_no"}
FINDINGS = {
    "licence": "business name does not match the licence register",
    "identity": "legal person name does not match the identity number",
    "bank": "account holder name does not match the settlement account",
}

router = APIRouter(tags=["kyc provider"])


class CheckRequest(BaseModel):
    model_config = ConfigDict(extra="ignore")

    request_no: str = Field(min_length=1, max_length=100, pattern=r"^[A-Za-z0-9_\-]+$")
    check: Literal["licence", "identity", "bank"]
    merchant_ref: str = Field(min_length=1, max_length=64)
    subject: dict[str, str]
    notify_url: str = Field(min_length=1, pattern=r"^https?://")


def ensure_schema(store: Store, schema: str) -> None:
    with store.tx() as db:
        for statement in filter(str.strip, schema.split(";")):
            db.execute(statement)


def _view(row: dict[str, Any], *, internal: bool = False) -> dict[str, Any]:
    view = {k: row[k] for k in ("request_no", "check_id", "merchant_ref", "status", "findings", "created_at")}
    view["check"] = row["kind"]
    if internal:
        view |= {k: row[k] for k in ("subject_tail", "request_calls", "query_calls")}
    return view


@router.post("/kyc/v1/checks")
async def request_check(request: Request) -> dict[str, Any]:
    ctx, faults, body = await verified(request, "kyc")
    store = ctx.store
    req = parse(CheckRequest, body)
    missing = [f for f in REQUIRED[req.check] if not req.subject.get(f)]
    if missing:
        raise invalid(f"subject lacks {', '.join(missing)} for a {req.check} check")
    now = time.time()
    with store.tx() as db:
        row = db.execute("SELECT * FROM kyc_checks WHERE request_no = ?", (req.request_no,)).fetchone()
        if row is not None:
            db.execute(
                "UPDATE kyc_checks SET request_calls = request_calls + 1 WHERE request_no = ?", (req.request_no,)
            )
            return _view(dict(row))
        mismatch = faults.kyc_result == "mismatch"
        outcome, findings = ("MISMATCH", FINDINGS[req.check]) if mismatch else ("PASS", None)
        check_id = new_id("kyc_")
        db.execute(
            "INSERT INTO kyc_checks (request_no, check_id, kind, merchant_ref, subject_tail, status, findings,"
            " notify_url, created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (
                req.request_no,
                check_id,
                req.check,
                req.merchant_ref,
                req.subject[NUMBER[req.check]][-4:],
                outcome,
                findings,
                req.notify_url,
                iso(now),
            ),
        )
        store.enqueue(
            db,
            party="kyc",
            event_type="kyc.completed",
            ref=req.request_no,
            out_trade_no=req.merchant_ref,
            notify_url=req.notify_url,
            now=now,
            delay_ms=faults.callback_delay_ms,
            dropped=faults.drop_callbacks,
            copies=2 if faults.duplicate_callbacks else 1,
            payload={
                "request_no": req.request_no,
                "check_id": check_id,
                "check": req.check,
                "merchant_ref": req.merchant_ref,
                "result": outcome,
                "findings": findings,
            },
        )
    context(request).notifier.wake()
    # The result is decided, but the provider answers asynchronously: the caller learns it by callback.
    return {**_view(_row(store, req.request_no)), "status": "PROCESSING", "findings": None}


def _row(store: Store, request_no: str) -> dict[str, Any]:
    row = store.one("SELECT * FROM kyc_checks WHERE request_no = ?", request_no)
    if row is None:
        raise SandboxError(404, "CHECK_NOT_EXIST", f"no check with request_no {request_no!r}")
    return row


@router.get("/kyc/v1/checks/{request_no}")
async def query_check(request_no: str, request: Request) -> dict[str, Any]:
    ctx, _, _ = await verified(request, "kyc")
    store = ctx.store
    with store.tx() as db:
        db.execute("UPDATE kyc_checks SET query_calls = query_calls + 1 WHERE request_no = ?", (request_no,))
    return _view(_row(store, request_no))


@router.get("/_sandbox/kyc/checks")
async def inspect_checks(request: Request, merchant_ref: str | None = None) -> list[dict[str, Any]]:
    store = context(request).store
    rows = store.all(
        "SELECT * FROM kyc_checks WHERE (? IS NULL OR merchant_ref = ?) ORDER BY rowid", merchant_ref, merchant_ref
    )
    return [_view(r, internal=True) for r in rows]
