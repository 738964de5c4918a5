"""What a payment channel (wechat / alipay) does with orders, on the sandbox's SQLite (its refunds:
`ops/sandbox/channel_refunds.py`).

Both channels behave the same; they differ only in name, secret and id prefixes. Every state change
that the platform hears about by callback queues its notification in the same transaction.
"""

from __future__ import annotations

import time
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from ops.sandbox.errors import SandboxError
from ops.sandbox.faults import Faults
from ops.sandbox.store import Store, iso, new_id

ID_PREFIX = {"wechat": "wx", "alipay": "ali"}
BY_ORDER = " WHERE channel = ? AND out_trade_no = ?"


class CreateOrder(BaseModel):
    model_config = ConfigDict(extra="ignore")

    out_trade_no: str = Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_\-]+$")
    amount_minor: int = Field(gt=0, strict=True)
    currency: str = Field(pattern=r"^[A-Z]{3}$")
    description: str = Field(default="", max_length=256)
    notify_url: str = Field(min_length=1, pattern=r"^https?://")


def order_not_found(out_trade_no: str) -> SandboxError:
    return SandboxError(404, "ORDER_NOT_EXIST", f"no order with out_trade_no {out_trade_no!r}")


class PaymentBook:
    def __init__(self, store: Store, public_url: str) -> None:
        self.store = store
        self.public_url = public_url.rstrip("/")

    # --- views ------------------------------------------------------------------------------

    def order_view(self, row: dict[str, Any], *, internal: bool = False) -> dict[str, Any]:
        refunded = self.store.one(
            "SELECT COALESCE(SUM(amount_minor), 0) AS s FROM refunds WHERE channel = ? AND out_trade_no = ?"
            " AND status = 'SUCCESS'",
            row["channel"],
            row["out_trade_no"],
        )
        view = {
            k: row[k]
            for k in (
                "channel",
                "channel_order_id",
                "out_trade_no",
                "status",
                "amount_minor",
                "currency",
                "description",
                "channel_txn_id",
                "paid_at",
                "closed_at",
                "created_at",
            )
        }
        view["pay_url"] = f"{self.public_url}/{row['channel']}/pay/{row['out_trade_no']}"
        view["refunded_minor"] = refunded["s"] if refunded else 0
        if internal:
            counters = ("create_calls", "query_calls", "close_calls", "pay_calls")
            view |= {k: row[k] for k in ("notify_url", *counters)}
        return view

    def _order(self, channel: str, out_trade_no: str) -> dict[str, Any]:
        row = self.store.one("SELECT * FROM orders" + BY_ORDER, channel, out_trade_no)
        if row is None:
            raise order_not_found(out_trade_no)
        return row

    # --- orders -----------------------------------------------------------------------------

    def create_order(self, channel: str, req: CreateOrder) -> dict[str, Any]:
        now = time.time()
        with self.store.tx() as db:
            row = db.execute("SELECT * FROM orders" + BY_ORDER, (channel, req.out_trade_no)).fetchone()
            if row is not None:
                if (row["amount_minor"], row["currency"]) != (req.amount_minor, req.currency):
                    raise SandboxError(
                        409,
                        "OUT_TRADE_NO_CONFLICT",
                        f"out_trade_no {req.out_trade_no!r} already used with {row['amount_minor']} {row['currency']}",
                    )
                db.execute("UPDATE orders SET create_calls = create_calls + 1" + BY_ORDER, (channel, req.out_trade_no))
            else:
                db.execute(
                    "INSERT INTO orders (channel, out_trade_no, channel_order_id, amount_minor,"
                    " currency, description, notify_url, status, created_at)"
                    " VALUES (?, ?, ?, ?, ?, ?, ?, 'NOTPAY', ?)",
                    (
                        channel,
                        req.out_trade_no,
                        new_id(ID_PREFIX[channel] + "o"),
                        req.amount_minor,
                        req.currency,
                        req.description,
                        req.notify_url,
                        iso(now),
                    ),
                )
        return self.order_view(self._order(channel, req.out_trade_no))

    def query_order(self, channel: str, out_trade_no: str) -> dict[str, Any]:
        with self.store.tx() as db:
            db.execute("UPDATE orders SET query_calls = query_calls + 1" + BY_ORDER, (channel, out_trade_no))
        return self.order_view(self._order(channel, out_trade_no))

    def close_order(self, channel: str, out_trade_no: str) -> dict[str, Any]:
        now = time.time()
        with self.store.tx() as db:
            db.execute("UPDATE orders SET close_calls = close_calls + 1" + BY_ORDER, (channel, out_trade_no))
            db.execute(
                "UPDATE orders SET status = 'CLOSED', closed_at = ?" + BY_ORDER + " AND status = 'NOTPAY'",
                (iso(now), channel, out_trade_no),
            )
        view = self.order_view(self._order(channel, out_trade_no))
        if view["status"] == "SUCCESS":
            # The platform's deadline raced the customer: it must learn the order is paid, not closed.
            raise SandboxError(
                409, "ORDER_PAID", "the order is already paid and cannot be closed", status=view["status"], order=view
            )
        return view

    def pay(self, channel: str, out_trade_no: str, faults: Faults) -> dict[str, Any]:
        now = time.time()
        with self.store.tx() as db:
            row = db.execute("SELECT * FROM orders" + BY_ORDER, (channel, out_trade_no)).fetchone()
            if row is None:
                raise order_not_found(out_trade_no)
            db.execute("UPDATE orders SET pay_calls = pay_calls + 1" + BY_ORDER, (channel, out_trade_no))
            if row["status"] == "NOTPAY":
                txn_id = new_id(ID_PREFIX[channel] + "t")
                db.execute(
                    "UPDATE orders SET status = 'SUCCESS', channel_txn_id = ?, paid_at = ?" + BY_ORDER,
                    (txn_id, iso(now), channel, out_trade_no),
                )
                self.store.enqueue(
                    db,
                    party=channel,
                    event_type="payment.succeeded",
                    ref=out_trade_no,
                    out_trade_no=out_trade_no,
                    notify_url=row["notify_url"],
                    now=now,
                    delay_ms=faults.callback_delay_ms,
                    dropped=faults.drop_callbacks,
                    copies=2 if faults.duplicate_callbacks else 1,
                    payload={
                        "out_trade_no": out_trade_no,
                        "channel_txn_id": txn_id,
                        "amount_minor": row["amount_minor"],
                        "currency": row["currency"],
                        "status": "SUCCESS",
                        "paid_at": iso(now),
                    },
                )
        if row["status"] == "CLOSED":  # refused after the tx so the attempt still shows in pay_calls
            raise SandboxError(409, "ORDER_CLOSED", "the order is closed and can no longer be paid")
        return self.order_view(self._order(channel, out_trade_no))
