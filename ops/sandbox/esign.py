"""The e-sign provider: a contract per platform request number, a ``sign_url`` where ``POST`` is the
merchant signing, and a signed ``contract.signed`` callback once it is signed."""

from __future__ import annotations

import time
from typing import Any

from fastapi import APIRouter, Request
from pydantic import BaseModel, ConfigDict, Field

from ops.sandbox.context import context
from ops.sandbox.errors import SandboxError
from ops.sandbox.faults import gate
from ops.sandbox.gate import parse, verified
from ops.sandbox.store import Store, iso, new_id

SCHEMA = """
CREATE TABLE IF NOT EXISTS esign_contracts (
    request_no TEXT PRIMARY KEY, contract_id TEXT NOT NULL UNIQUE, merchant_ref TEXT NOT NULL, title TEXT NOT NULL,
    notify_url TEXT NOT NULL, status TEXT NOT NULL, signed_at TEXT, created_at TEXT NOT NULL,
    create_calls INTEGER NOT NULL DEFAULT 1, sign_calls INTEGER NOT NULL DEFAULT 0
);
"""

router = APIRouter(tags=["e-sign provider"])


class CreateContract(BaseModel):
    model_config = ConfigDict(extra="ignore")

    request_no: str = Field(min_length=1, max_length=100, pattern=r"^[A-Za-z0-9_\-]+$")
    merchant_ref: str = Field(min_length=1, max_length=64)
    title: str = Field(default="", max_length=256)
    notify_url: str = Field(min_length=1, pattern=r"^https?://")


def _public(request: Request) -> str:
    return str(request.app.state.public_url).rstrip("/")


def _view(request: Request, row: dict[str, Any], *, internal: bool = False) -> dict[str, Any]:
    view = {k: row[k] for k in ("contract_id", "request_no", "merchant_ref", "title", "status", "signed_at")}
    view["sign_url"] = f"{_public(request)}/esign/sign/{row['contract_id']}"
    if internal:
        view |= {k: row[k] for k in ("create_calls", "sign_calls")}
    return view


def _by(store: Store, column: str, value: str) -> dict[str, Any]:
    row = store.one(f"SELECT * FROM esign_contracts WHERE {column} = ?", value)
    if row is None:
        raise SandboxError(404, "CONTRACT_NOT_EXIST", f"no contract with {column} {value!r}")
    return row


@router.post("/esign/v1/contracts")
async def create_contract(request: Request) -> dict[str, Any]:
    ctx, _, body = await verified(request, "esign")
    store = ctx.store
    req = parse(CreateContract, body)
    with store.tx() as db:
        cur = db.execute(
            "UPDATE esign_contracts SET create_calls = create_calls + 1 WHERE request_no = ?", (req.request_no,)
        )
        if cur.rowcount == 0:
            db.execute(
                "INSERT INTO esign_contracts (request_no, contract_id, merchant_ref, title, notify_url, status,"
                " created_at) VALUES (?, ?, ?, ?, ?, 'CREATED', ?)",
                (req.request_no, new_id("ct_"), req.merchant_ref, req.title, req.notify_url, iso(time.time())),
            )
    return _view(request, _by(store, "request_no", req.request_no))


@router.get("/esign/v1/contracts/{request_no}")
async def query_contract(request_no: str, request: Request) -> dict[str, Any]:
    ctx, _, _ = await verified(request, "esign")
    store = ctx.store
    return _view(request, _by(store, "request_no", request_no))


@router.post("/esign/sign/{contract_id}")
async def sign(contract_id: str, request: Request) -> dict[str, Any]:
    """The merchant signing (the contract's sign_url). Not signed by the platform: it is the merchant."""
    ctx = context(request)
    faults = ctx.store.get_faults("esign")
    await gate("esign", faults, signed=False)
    now = time.time()
    with ctx.store.tx() as db:
        row = db.execute("SELECT * FROM esign_contracts WHERE contract_id = ?", (contract_id,)).fetchone()
        if row is None:
            raise SandboxError(404, "CONTRACT_NOT_EXIST", f"no contract {contract_id!r}")
        db.execute("UPDATE esign_contracts SET sign_calls = sign_calls + 1 WHERE contract_id = ?", (contract_id,))
        if row["status"] == "CREATED":
            db.execute(
                "UPDATE esign_contracts SET status = 'SIGNED', signed_at = ? WHERE contract_id = ?",
                (iso(now), contract_id),
            )
            ctx.store.enqueue(
                db,
                party="esign",
                event_type="contract.signed",
                ref=row["request_no"],
                out_trade_no=row["merchant_ref"],
                notify_url=row["notify_url"],
                now=now,
                delay_ms=faults.callback_delay_ms,
                dropped=faults.drop_callbacks,
                copies=2 if faults.duplicate_callbacks else 1,
                payload={
                    "request_no": row["request_no"],
                    "contract_id": contract_id,
                    "merchant_ref": row["merchant_ref"],
                    "signed_at": iso(now),
                },
            )
    ctx.notifier.wake()
    return _view(request, _by(ctx.store, "contract_id", contract_id))


@router.get("/_sandbox/esign/contracts")
async def inspect_contracts(request: Request, merchant_ref: str | None = None) -> list[dict[str, Any]]:
    store = context(request).store
    rows = store.all(
        "SELECT * FROM esign_contracts WHERE (? IS NULL OR merchant_ref = ?) ORDER BY rowid", merchant_ref, merchant_ref
    )
    return [_view(request, r, internal=True) for r in rows]
