"""The bank's payout service: batches of transfers keyed by the platform's payout numbers.

``POST /bank/v1/payout-batches`` accepts a batch; every item is PROCESSING at first and its result goes
out later by signed callback (``payout.paid`` / ``payout.failed``) and through ``GET`` of the batch. A
payout number the bank has seen changes nothing when it comes again (in the same batch or another), so
a platform that resubmits after a crash pays nobody twice. Knob ``payout_failure``, fixed when an item
is first submitted: ``transient`` refuses the whole request with a 503 (nothing recorded), ``permanent``
fails the item with a reason, ``unknown`` leaves it PROCESSING forever (until a test settles it).
Knobs ``payout_answer_lost`` (the first submit of a batch is recorded, then answered 504) and
``payout_resubmit_refused`` (a batch number already held is refused with a 409, as many banks do) make
a retried submit meet a refusal although the batch landed. ``GET`` of an unknown batch is a 404.
"""

from __future__ import annotations

import time
from typing import Any, Literal

from fastapi import APIRouter, Request
from pydantic import BaseModel, ConfigDict, Field

from ops.sandbox import quirks
from ops.sandbox.context import context
from ops.sandbox.errors import SandboxError
from ops.sandbox.faults import Faults
from ops.sandbox.gate import parse, verified
from ops.sandbox.store import Store, iso, new_id

SCHEMA = """
CREATE TABLE IF NOT EXISTS bank_payouts (
    payout_no TEXT PRIMARY KEY, batch_no TEXT NOT NULL, amount_minor INTEGER NOT NULL, currency TEXT NOT NULL,
    account_name TEXT NOT NULL, account_tail TEXT NOT NULL, bank_name TEXT NOT NULL, notify_url TEXT NOT NULL,
    status TEXT NOT NULL, outcome TEXT NOT NULL, failure_reason TEXT, bank_ref TEXT, resolve_at REAL,
    drop_callback INTEGER NOT NULL, callback_copies INTEGER NOT NULL, created_at TEXT NOT NULL, finished_at TEXT,
    submit_calls INTEGER NOT NULL DEFAULT 1, query_calls INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX IF NOT EXISTS bank_payouts_by_batch ON bank_payouts (batch_no);
CREATE INDEX IF NOT EXISTS bank_payouts_due ON bank_payouts (status, resolve_at);
"""
# Why a real bank refuses a transfer to a merchant's account; the platform shows it to the merchant.
FAILURE_REASONS = ("ACCOUNT_FROZEN: the payee account is frozen", "NAME_MISMATCH: account name does not match")

router = APIRouter(tags=["bank"])


class PayoutItem(BaseModel):
    model_config = ConfigDict(extra="ignore")

    payout_no: str = Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_\-]+$")
    amount_minor: int = Field(gt=0)
    currency: str = Field(min_length=3, max_length=3)
    account_name: str = Field(min_length=1)
    account_no: str = Field(min_length=4)
    bank_name: str = Field(min_length=1)


class PayoutBatchRequest(BaseModel):
    model_config = ConfigDict(extra="ignore")

    batch_no: str = Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_\-]+$")
    notify_url: str = Field(min_length=1, pattern=r"^https?://")
    items: list[PayoutItem] = Field(min_length=1, max_length=5000)


class Settle(BaseModel):
    status: Literal["PAID", "FAILED"]
    failure_reason: str | None = None


def _view(row: dict[str, Any], *, internal: bool = False) -> dict[str, Any]:
    keys = ("payout_no", "batch_no", "amount_minor", "currency", "status", "failure_reason", "bank_ref")
    view = {k: row[k] for k in keys}
    if internal:
        view |= {k: row[k] for k in ("account_tail", "outcome", "submit_calls", "query_calls")}
    return view


def _outcome(faults: Faults, payout_no: str) -> tuple[str, str | None]:
    if faults.payout_failure == "permanent":
        return "FAILED", FAILURE_REASONS[sum(map(ord, payout_no)) % len(FAILURE_REASONS)]
    if faults.payout_failure == "unknown":
        return "UNKNOWN", None
    return "PAID", None


@router.post("/bank/v1/payout-batches")
async def submit_batch(request: Request) -> dict[str, Any]:
    ctx, asked, body = await verified(request, "bank")
    store = ctx.store
    req = parse(PayoutBatchRequest, body)
    marks = quirks.payout_marks(asked)
    faults = quirks.silenced(asked, marks)
    if faults.payout_failure == "transient":
        raise SandboxError(503, "SYSTEM_ERROR", "payout service temporarily unavailable (sandbox fault)")
    now = time.time()
    with store.tx() as db:
        known = db.execute("SELECT 1 FROM bank_payouts WHERE batch_no = ? LIMIT 1", (req.batch_no,)).fetchone()
        if known is not None and faults.payout_resubmit_refused:
            raise SandboxError(409, "BATCH_NO_DUPLICATE", f"payout batch {req.batch_no!r} was submitted before")
        for item in req.items:
            seen = db.execute("SELECT * FROM bank_payouts WHERE payout_no = ?", (item.payout_no,)).fetchone()
            if seen is not None:
                if seen["amount_minor"] != item.amount_minor:
                    raise SandboxError(
                        409, "PAYOUT_NO_CONFLICT", f"payout_no {item.payout_no!r} was used for another amount"
                    )
                db.execute(
                    "UPDATE bank_payouts SET submit_calls = submit_calls + 1 WHERE payout_no = ?", (item.payout_no,)
                )
                continue
            outcome, reason = _outcome(faults, item.payout_no)
            db.execute(
                "INSERT INTO bank_payouts (payout_no, batch_no, amount_minor, currency, account_name, account_tail,"
                " bank_name, notify_url, status, outcome, failure_reason, resolve_at, drop_callback,"
                " callback_copies, created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, 'PROCESSING', ?, ?, ?, ?, ?, ?)",
                (
                    item.payout_no,
                    req.batch_no,
                    item.amount_minor,
                    item.currency,
                    item.account_name,
                    item.account_no[-4:],
                    item.bank_name,
                    req.notify_url,
                    outcome,
                    reason,
                    None if outcome == "UNKNOWN" else now + faults.callback_delay_ms / 1000,
                    int(faults.drop_callbacks),
                    2 if faults.duplicate_callbacks else 1,
                    iso(now),
                ),
            )
            quirks.mark(db, "bank", item.payout_no, marks)
    if known is None and faults.payout_answer_lost:
        raise SandboxError(504, "GATEWAY_TIMEOUT", "the answer to this payout batch was lost (sandbox fault)")
    rows = [_row(store, i.payout_no) for i in req.items]
    return {"batch_no": req.batch_no, "items": [quirks.mask_payout(store, _view(r)) for r in rows]}


def _row(store: Store, payout_no: str) -> dict[str, Any]:
    row = store.one("SELECT * FROM bank_payouts WHERE payout_no = ?", payout_no)
    if row is None:
        raise SandboxError(404, "PAYOUT_NOT_EXIST", f"no payout {payout_no!r}")
    return row


@router.get("/bank/v1/payout-batches/{batch_no}")
async def query_batch(batch_no: str, request: Request) -> dict[str, Any]:
    ctx, _, _ = await verified(request, "bank")
    store = ctx.store
    resolve_due_payouts(store)  # a query right at resolve_at must not see a stale PROCESSING
    with store.tx() as db:
        db.execute("UPDATE bank_payouts SET query_calls = query_calls + 1 WHERE batch_no = ?", (batch_no,))
    rows = store.all("SELECT * FROM bank_payouts WHERE batch_no = ? ORDER BY rowid", batch_no)
    if not rows:
        raise SandboxError(404, "BATCH_NOT_EXIST", f"no payout batch {batch_no!r}")
    return {"batch_no": batch_no, "items": [quirks.mask_payout(store, _view(r)) for r in rows]}


def resolve_due_payouts(store: Store, payout_no: str | None = None) -> int:
    """Finish PROCESSING payouts whose time has come (or the one named) and queue their callbacks."""
    now = time.time()
    with store.tx() as db:
        if payout_no is None:
            due = db.execute(
                "SELECT * FROM bank_payouts WHERE status = 'PROCESSING' AND resolve_at <= ?", (now,)
            ).fetchall()
        else:
            due = db.execute(
                "SELECT * FROM bank_payouts WHERE status = 'PROCESSING' AND payout_no = ?", (payout_no,)
            ).fetchall()
        for r in due:
            status = r["outcome"]
            bank_ref = new_id("bkp_") if status == "PAID" else None
            db.execute(
                "UPDATE bank_payouts SET status = ?, bank_ref = ?, finished_at = ? WHERE payout_no = ?",
                (status, bank_ref, iso(now), r["payout_no"]),
            )
            store.enqueue_resolved(
                db,
                r,
                party="bank",
                event_type="payout.paid" if status == "PAID" else "payout.failed",
                ref=r["payout_no"],
                out_trade_no=r["batch_no"],
                now=now,
                payload={
                    "batch_no": r["batch_no"],
                    "payout_no": r["payout_no"],
                    "amount_minor": r["amount_minor"],
                    "currency": r["currency"],
                    "status": status,
                    "failure_reason": r["failure_reason"],
                    "bank_ref": bank_ref,
                },
            )
    return len(due)


@router.get("/_sandbox/bank/payouts")
async def inspect_payouts(request: Request, batch_no: str | None = None) -> list[dict[str, Any]]:
    rows = context(request).store.all(
        "SELECT * FROM bank_payouts WHERE (? IS NULL OR batch_no = ?) ORDER BY rowid", batch_no, batch_no
    )
    return [_view(r, internal=True) for r in rows]


@router.post("/_sandbox/bank/payouts/{payout_no}/settle")
async def settle(payout_no: str, body: Settle, request: Request) -> dict[str, Any]:
    """The bank finally answers a payout it had left unanswered (how a test ends an UNKNOWN)."""
    ctx = context(request)
    row = _row(ctx.store, payout_no)
    if row["status"] != "PROCESSING":
        raise SandboxError(409, "PAYOUT_FINISHED", f"payout {payout_no} is {row['status']}")
    with ctx.store.tx() as db:
        db.execute(
            "UPDATE bank_payouts SET outcome = ?, failure_reason = ? WHERE payout_no = ?",
            (body.status, body.failure_reason, payout_no),
        )
    resolve_due_payouts(ctx.store, payout_no)
    ctx.notifier.wake()
    return _view(_row(ctx.store, payout_no), internal=True)
