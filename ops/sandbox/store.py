"""The sandbox's own state: one SQLite file (stdlib sqlite3).

The sandbox plays the outside world, so it deliberately shares nothing with the platform's
PostgreSQL: wiping one must never repair the other. Everything that has to survive a sandbox
restart lives here — orders, refunds, the callback outbox (with delivery progress) and fault knobs.

All access happens on the event loop thread (every endpoint is async) and each statement is tiny, so
one connection guarded by a lock is enough; WAL keeps committed rows across a SIGKILL.
"""

from __future__ import annotations

import json
import sqlite3
import threading
import uuid
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from ops.sandbox.faults import Faults

SCHEMA = """
CREATE TABLE IF NOT EXISTS orders (
    channel TEXT NOT NULL, out_trade_no TEXT NOT NULL, channel_order_id TEXT NOT NULL UNIQUE,
    amount_minor INTEGER NOT NULL, currency TEXT NOT NULL, description TEXT NOT NULL,
    notify_url TEXT NOT NULL, status TEXT NOT NULL, channel_txn_id TEXT, paid_at TEXT, closed_at TEXT,
    created_at TEXT NOT NULL, create_calls INTEGER NOT NULL DEFAULT 1,
    query_calls INTEGER NOT NULL DEFAULT 0, close_calls INTEGER NOT NULL DEFAULT 0,
    pay_calls INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (channel, out_trade_no)
);
CREATE TABLE IF NOT EXISTS refunds (
    channel TEXT NOT NULL, out_refund_no TEXT NOT NULL, refund_id TEXT NOT NULL UNIQUE,
    out_trade_no TEXT NOT NULL, amount_minor INTEGER NOT NULL, currency TEXT NOT NULL,
    reason TEXT NOT NULL, notify_url TEXT NOT NULL, status TEXT NOT NULL, failure_reason TEXT,
    outcome TEXT NOT NULL, resolve_at REAL NOT NULL, drop_callback INTEGER NOT NULL,
    callback_copies INTEGER NOT NULL, created_at TEXT NOT NULL, finished_at TEXT,
    request_calls INTEGER NOT NULL DEFAULT 1, query_calls INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (channel, out_refund_no)
);
CREATE INDEX IF NOT EXISTS refunds_by_order ON refunds (channel, out_trade_no);
CREATE INDEX IF NOT EXISTS refunds_due ON refunds (status, resolve_at);
CREATE TABLE IF NOT EXISTS notifications (
    event_id TEXT PRIMARY KEY, party TEXT NOT NULL, event_type TEXT NOT NULL, ref TEXT NOT NULL,
    out_trade_no TEXT, notify_url TEXT NOT NULL, body TEXT NOT NULL, copies INTEGER NOT NULL,
    deliveries INTEGER NOT NULL DEFAULT 0, attempts INTEGER NOT NULL DEFAULT 0,
    failures INTEGER NOT NULL DEFAULT 0, next_attempt_at REAL, delivered_at TEXT,
    dropped INTEGER NOT NULL DEFAULT 0, gave_up INTEGER NOT NULL DEFAULT 0, last_error TEXT,
    created_at TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS notifications_due ON notifications (next_attempt_at);
CREATE TABLE IF NOT EXISTS faults (party TEXT PRIMARY KEY, config TEXT NOT NULL);
"""

# What each channel holds of the platform's money per currency: paid orders less successful refunds (an
# order stays SUCCESS when refunded). The platform's `channel:{ch}:clearing` must equal it once every flow
# has heard its outcome (db/ledger_checks.py: channel_disagreements).
_HELD = """
    SELECT channel, currency, out_trade_no, amount_minor AS amount FROM orders WHERE status = 'SUCCESS'
    UNION ALL SELECT channel, currency, out_trade_no, -amount_minor FROM refunds WHERE status = 'SUCCESS'
"""
HOLDINGS_SQL = f"""
SELECT channel, currency, sum(amount) AS held_minor FROM ({_HELD})
GROUP BY channel, currency ORDER BY channel, currency
"""
# The same per payment (out_trade_no), for the payments named in the one parameter (a JSON array): what the
# channel holds of each of them (db/ledger_checks.py: payment_channel_disagreements).
HOLDINGS_BY_PAYMENT_SQL = f"""
SELECT channel, currency, out_trade_no AS payment_no, sum(amount) AS held_minor FROM ({_HELD})
WHERE out_trade_no IN (SELECT value FROM json_each(?))
GROUP BY channel, currency, out_trade_no ORDER BY channel, currency, out_trade_no
"""

MAX_ATTEMPTS = 15
MAX_BACKOFF_SECONDS = 60.0


def iso(ts: float) -> str:
    return datetime.fromtimestamp(ts, UTC).isoformat()


def new_id(prefix: str) -> str:
    return f"{prefix}{uuid.uuid4().hex[:24]}"


class Store:
    def __init__(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self._conn = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
        self._conn.row_factory = sqlite3.Row
        self._conn.execute("PRAGMA journal_mode=WAL")
        self._conn.executescript(SCHEMA)
        self._lock = threading.RLock()

    def close(self) -> None:
        with self._lock:
            self._conn.close()

    @contextmanager
    def tx(self) -> Iterator[sqlite3.Connection]:
        """One atomic unit: a state change and the notification it causes commit together (outbox)."""
        with self._lock:
            self._conn.execute("BEGIN IMMEDIATE")
            try:
                yield self._conn
            except BaseException:
                self._conn.execute("ROLLBACK")
                raise
            self._conn.execute("COMMIT")

    def one(self, sql: str, *params: Any) -> dict[str, Any] | None:
        with self._lock:
            row = self._conn.execute(sql, params).fetchone()
        return dict(row) if row else None

    def all(self, sql: str, *params: Any) -> list[dict[str, Any]]:
        with self._lock:
            return [dict(r) for r in self._conn.execute(sql, params).fetchall()]

    # --- faults -----------------------------------------------------------------------------

    def get_faults(self, party: str) -> Faults:
        row = self.one("SELECT config FROM faults WHERE party = ?", party)
        return Faults.model_validate_json(row["config"]) if row else Faults()

    def put_faults(self, party: str, faults: Faults) -> None:
        with self.tx() as db:
            db.execute(
                "INSERT INTO faults (party, config) VALUES (?, ?) "
                "ON CONFLICT (party) DO UPDATE SET config = excluded.config",
                (party, faults.model_dump_json()),
            )

    def reset_faults(self, party: str) -> None:
        with self.tx() as db:
            db.execute("DELETE FROM faults WHERE party = ?", (party,))

    # --- notification outbox ----------------------------------------------------------------

    @staticmethod
    def enqueue(
        db: sqlite3.Connection,
        *,
        party: str,
        event_type: str,
        ref: str,
        out_trade_no: str,
        notify_url: str,
        payload: dict[str, Any],
        now: float,
        delay_ms: int,
        dropped: bool,
        copies: int,
    ) -> str:
        """Queue a callback inside the caller's transaction. The body (with its event_id) is frozen
        here so every retry and duplicate carries exactly the same bytes."""
        event_id = new_id("evt_")
        body = json.dumps(
            {"event_id": event_id, "event_type": event_type, "party": party, **payload, "occurred_at": iso(now)},
            separators=(",", ":"),
        )
        db.execute(
            "INSERT INTO notifications (event_id, party, event_type, ref, out_trade_no, notify_url, body,"
            " copies, next_attempt_at, dropped, created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (
                event_id,
                party,
                event_type,
                ref,
                out_trade_no,
                notify_url,
                body,
                copies,
                None if dropped else now + delay_ms / 1000,
                int(dropped),
                iso(now),
            ),
        )
        return event_id

    @staticmethod
    def enqueue_resolved(
        db: sqlite3.Connection,
        row: Mapping[str, Any],
        *,
        party: str,
        event_type: str,
        ref: str,
        out_trade_no: str,
        payload: dict[str, Any],
        now: float,
    ) -> str:
        """Queue the callback of something resolved on a timer (a refund, a payout): its callback faults
        were fixed when it was asked for and stand in its row (`notify_url`, `drop_callback`,
        `callback_copies`); it goes out at once."""
        return Store.enqueue(
            db,
            party=party,
            event_type=event_type,
            ref=ref,
            out_trade_no=out_trade_no,
            notify_url=row["notify_url"],
            payload=payload,
            now=now,
            delay_ms=0,
            dropped=bool(row["drop_callback"]),
            copies=row["callback_copies"],
        )

    def due_notifications(self, now: float, limit: int = 20) -> list[dict[str, Any]]:
        return self.all(
            "SELECT * FROM notifications WHERE next_attempt_at IS NOT NULL"
            " AND next_attempt_at <= ? ORDER BY next_attempt_at LIMIT ?",
            now,
            limit,
        )

    def record_attempt(self, event_id: str, *, ok: bool, error: str | None, now: float, retry_base_s: float) -> None:
        with self.tx() as db:
            row = db.execute("SELECT * FROM notifications WHERE event_id = ?", (event_id,)).fetchone()
            if row is None:
                return
            attempts = row["attempts"] + 1
            if ok:
                deliveries = row["deliveries"] + 1
                # Duplicate-callback fault: the next copy goes out right away with the same event_id.
                nxt = now if deliveries < row["copies"] else None
                db.execute(
                    "UPDATE notifications SET attempts = ?, deliveries = ?, failures = 0,"
                    " next_attempt_at = ?, delivered_at = ?, last_error = NULL WHERE event_id = ?",
                    (attempts, deliveries, nxt, iso(now), event_id),
                )
                return
            failures = row["failures"] + 1
            gave_up = failures >= MAX_ATTEMPTS
            delay = min(retry_base_s * 2 ** (failures - 1), MAX_BACKOFF_SECONDS)
            db.execute(
                "UPDATE notifications SET attempts = ?, failures = ?, next_attempt_at = ?,"
                " gave_up = ?, last_error = ? WHERE event_id = ?",
                (attempts, failures, None if gave_up else now + delay, int(gave_up), error, event_id),
            )

    def redeliver(self, party: str, event_id: str, now: float) -> bool:
        """Send an event once more (also un-drops it): how tests stage duplicate or late callbacks."""
        with self.tx() as db:
            cur = db.execute(
                "UPDATE notifications SET copies = deliveries + 1, failures = 0, gave_up = 0,"
                " dropped = 0, next_attempt_at = ? WHERE event_id = ? AND party = ?",
                (now, event_id, party),
            )
            return cur.rowcount > 0

    def notifications(self, party: str | None, ref: str | None) -> list[dict[str, Any]]:
        rows = self.all(
            "SELECT * FROM notifications WHERE (? IS NULL OR party = ?)"
            " AND (? IS NULL OR ref = ? OR out_trade_no = ?) ORDER BY rowid",
            party,
            party,
            ref,
            ref,
            ref,
        )
        for r in rows:
            r["body"] = json.loads(r["body"])
            r["dropped"] = bool(r["dropped"])
            r["gave_up"] = bool(r["gave_up"])
            r["pending"] = r["next_attempt_at"] is not None
        return rows
