"""What a payment channel (wechat / alipay) does with refunds, on the sandbox's SQLite: the channel's
book is its orders (`ops/sandbox/payments.py`) and these refunds of them. Every state change the
platform hears about by callback queues its notification in the same transaction.
"""

from __future__ import annotations

import time
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from ops.sandbox.errors import SandboxError
from ops.sandbox.faults import Faults
from ops.sandbox.payments import BY_ORDER, ID_PREFIX, PaymentBook, order_not_found
from ops.sandbox.store import iso, new_id

REFUND_FAILURE_REASON = "ACCOUNT_CLOSED"
BY_REFUND = " WHERE channel = ? AND out_refund_no = ?"


class CreateRefund(BaseModel):
    model_config = ConfigDict(extra="ignore")

    out_refund_no: str = Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_\-]+$")
    out_trade_no: str = Field(min_length=1, max_length=64)
    amount_minor: int = Field(gt=0, strict=True)
    reason: str = Field(default="", max_length=256)
    notify_url: str = Field(min_length=1, pattern=r"^https?://")


class ChannelBook(PaymentBook):
    """A channel's orders and its refunds."""

    @staticmethod
    def refund_view(row: dict[str, Any], *, internal: bool = False) -> dict[str, Any]:
        view = {
            k: row[k]
            for k in (
                "channel",
                "refund_id",
                "out_refund_no",
                "out_trade_no",
                "amount_minor",
                "currency",
                "reason",
                "status",
                "failure_reason",
                "created_at",
                "finished_at",
            )
        }
        if internal:
            view |= {k: row[k] for k in ("notify_url", "request_calls", "query_calls")}
        return view

    def create_refund(self, channel: str, req: CreateRefund, faults: Faults) -> dict[str, Any]:
        now = time.time()
        lost = False
        with self.store.tx() as db:
            key = (channel, req.out_refund_no)
            existing = db.execute("SELECT * FROM refunds" + BY_REFUND, key).fetchone()
            if existing is not None:
                asked = (req.out_trade_no, req.amount_minor)
                if (existing["out_trade_no"], existing["amount_minor"]) != asked:
                    raise SandboxError(
                        409,
                        "OUT_REFUND_NO_CONFLICT",
                        f"out_refund_no {req.out_refund_no!r} already used for "
                        f"{existing['amount_minor']} on {existing['out_trade_no']!r}",
                    )
                if faults.refund_retry_refused:
                    raise SandboxError(
                        409, "REFUND_EXISTS", f"out_refund_no {req.out_refund_no!r} was already requested"
                    )
                db.execute("UPDATE refunds SET request_calls = request_calls + 1" + BY_REFUND, key)
            else:
                order = db.execute("SELECT * FROM orders" + BY_ORDER, (channel, req.out_trade_no)).fetchone()
                if order is None:
                    raise order_not_found(req.out_trade_no)
                if order["status"] != "SUCCESS":
                    raise SandboxError(
                        409, "ORDER_NOT_PAID", f"the order is {order['status']}, not paid", status=order["status"]
                    )
                # In-flight refunds count against the balance, as at a real channel: two concurrent
                # refunds must not together exceed what was paid.
                taken = db.execute(
                    "SELECT COALESCE(SUM(amount_minor), 0) FROM refunds WHERE channel = ?"
                    " AND out_trade_no = ? AND status IN ('PROCESSING', 'SUCCESS')",
                    (channel, req.out_trade_no),
                ).fetchone()[0]
                left = order["amount_minor"] - taken
                if req.amount_minor > left:
                    raise SandboxError(
                        400,
                        "REFUND_AMOUNT_EXCEEDED",
                        f"refund of {req.amount_minor} exceeds the refundable {left}",
                        refundable_minor=left,
                    )
                # The outcome and callback faults are fixed now, when the platform asks: a test sets
                # the knob, requests the refund, and gets that behaviour whatever it changes later.
                db.execute(
                    "INSERT INTO refunds (channel, out_refund_no, refund_id, out_trade_no, amount_minor,"
                    " currency, reason, notify_url, status, outcome, resolve_at, drop_callback,"
                    " callback_copies, created_at)"
                    " VALUES (?, ?, ?, ?, ?, ?, ?, ?, 'PROCESSING', ?, ?, ?, ?, ?)",
                    (
                        channel,
                        req.out_refund_no,
                        new_id(ID_PREFIX[channel] + "r"),
                        req.out_trade_no,
                        req.amount_minor,
                        order["currency"],
                        req.reason,
                        req.notify_url,
                        "FAILED" if faults.refund_failure == "permanent" else "SUCCESS",
                        now + faults.callback_delay_ms / 1000,
                        int(faults.drop_callbacks),
                        2 if faults.duplicate_callbacks else 1,
                        iso(now),
                    ),
                )
                if faults.refund_retry_refused:
                    lost = True
        if lost:  # after the commit: the refund is recorded, only its answer is lost
            raise SandboxError(503, "SYSTEM_ERROR", "refund accepted but the answer was lost (sandbox fault)")
        return self.refund_view(self._refund(channel, req.out_refund_no))

    def _refund(self, channel: str, out_refund_no: str) -> dict[str, Any]:
        row = self.store.one("SELECT * FROM refunds" + BY_REFUND, channel, out_refund_no)
        if row is None:
            raise SandboxError(404, "REFUND_NOT_EXIST", f"no refund with out_refund_no {out_refund_no!r}")
        return row

    def query_refund(self, channel: str, out_refund_no: str, faults: Faults | None = None) -> dict[str, Any]:
        self.resolve_due_refunds()  # a query right at resolve_at must not see a stale PROCESSING
        with self.store.tx() as db:
            db.execute("UPDATE refunds SET query_calls = query_calls + 1" + BY_REFUND, (channel, out_refund_no))
        if faults is not None and faults.refund_query_missing:
            raise SandboxError(404, "REFUND_NOT_EXIST", f"no refund with out_refund_no {out_refund_no!r}")
        return self.refund_view(self._refund(channel, out_refund_no))

    def list_refunds(self, channel: str, out_trade_no: str | None) -> list[dict[str, Any]]:
        rows = self.store.all(
            "SELECT * FROM refunds WHERE channel = ? AND (? IS NULL OR out_trade_no = ?) ORDER BY rowid",
            channel,
            out_trade_no,
            out_trade_no,
        )
        return [self.refund_view(r, internal=True) for r in rows]

    def resolve_due_refunds(self) -> int:
        """Finish PROCESSING refunds whose time has come and queue their callbacks."""
        now = time.time()
        with self.store.tx() as db:
            due = db.execute("SELECT * FROM refunds WHERE status = 'PROCESSING' AND resolve_at <= ?", (now,)).fetchall()
            for r in due:
                failed = r["outcome"] == "FAILED"
                reason = REFUND_FAILURE_REASON if failed else None
                db.execute(
                    "UPDATE refunds SET status = ?, failure_reason = ?, finished_at = ?"
                    " WHERE channel = ? AND out_refund_no = ?",
                    (r["outcome"], reason, iso(now), r["channel"], r["out_refund_no"]),
                )
                self.store.enqueue_resolved(
                    db,
                    r,
                    party=r["channel"],
                    event_type="refund.failed" if failed else "refund.succeeded",
                    ref=r["out_refund_no"],
                    out_trade_no=r["out_trade_no"],
                    now=now,
                    payload={
                        "out_trade_no": r["out_trade_no"],
                        "out_refund_no": r["out_refund_no"],
                        "refund_id": r["refund_id"],
                        "amount_minor": r["amount_minor"],
                        "currency": r["currency"],
                        "status": r["outcome"],
                        "failure_reason": reason,
                    },
                )
        return len(due)
