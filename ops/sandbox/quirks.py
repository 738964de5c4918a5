"""Where the party's records part from what it tells the platform: the statement fault knobs.

A knob (ops/sandbox/faults.py) is read when a payment, refund or payout happens and fixed on it as a
mark in ``statement_quirks``; from then on the party answers the platform's calls with a masked view
(unpaid, still PROCESSING) while its statement (ops/sandbox/statements.py) tells the truth, or shows
the row a day late, with another amount, or twice. The sandbox's own ``/_sandbox`` inspection keeps
showing the truth, so a test can see what really happened.
"""

from __future__ import annotations

import sqlite3
from typing import Any

from ops.sandbox.faults import Faults
from ops.sandbox.store import Store

SCHEMA = """
CREATE TABLE IF NOT EXISTS statement_quirks (
    party TEXT NOT NULL, ref TEXT NOT NULL, quirk TEXT NOT NULL, value INTEGER NOT NULL,
    PRIMARY KEY (party, ref, quirk)
)
"""
HIDDEN = "hidden"  # a payment never reported to the platform
NEXT_DAY = "next_day"  # on the next day's statement
AMOUNT_DELTA = "amount_delta"  # the statement's amount differs by this much
DUPLICATE = "duplicate"  # charged twice
UNREPORTED = "unreported"  # a refund or payout finished at the party, still PROCESSING to the platform


def payment_marks(faults: Faults) -> dict[str, int]:
    marks = {HIDDEN: faults.hide_payment, NEXT_DAY: faults.bill_next_day, DUPLICATE: faults.duplicate_payment}
    found = {k: 1 for k, on in marks.items() if on}
    if faults.bill_amount_delta_minor:
        found[AMOUNT_DELTA] = faults.bill_amount_delta_minor
    return found


def refund_marks(faults: Faults) -> dict[str, int]:
    marks = {NEXT_DAY: faults.bill_next_day, UNREPORTED: faults.refund_stuck_processing}
    return {k: 1 for k, on in marks.items() if on}


def payout_marks(faults: Faults) -> dict[str, int]:
    return {UNREPORTED: 1} if faults.payout_paid_unreported else {}


def silenced(faults: Faults, marks: dict[str, int]) -> Faults:
    """The knobs to act with: a hidden or unreported item's callback is dropped (never sent)."""
    quiet = HIDDEN in marks or UNREPORTED in marks
    return faults.model_copy(update={"drop_callbacks": True}) if quiet else faults


def mark(db: sqlite3.Connection, party: str, ref: str, marks: dict[str, int]) -> None:
    """Fix the marks on an item when it first happens (a repeat of the same request keeps the first)."""
    for quirk, value in marks.items():
        db.execute(
            "INSERT OR IGNORE INTO statement_quirks (party, ref, quirk, value) VALUES (?, ?, ?, ?)",
            (party, ref, quirk, value),
        )


def marks_of(store: Store, party: str, ref: str) -> dict[str, int]:
    rows = store.all("SELECT quirk, value FROM statement_quirks WHERE party = ? AND ref = ?", party, ref)
    return {r["quirk"]: r["value"] for r in rows}


def all_marks(store: Store, party: str) -> dict[str, dict[str, int]]:
    found: dict[str, dict[str, int]] = {}
    for r in store.all("SELECT ref, quirk, value FROM statement_quirks WHERE party = ?", party):
        found.setdefault(r["ref"], {})[r["quirk"]] = r["value"]
    return found


def mask_order(store: Store, view: dict[str, Any]) -> dict[str, Any]:
    """The order as the platform is told: a hidden payment is still unpaid."""
    if view["status"] == "SUCCESS" and HIDDEN in marks_of(store, view["channel"], view["out_trade_no"]):
        return {**view, "status": "NOTPAY", "channel_txn_id": None, "paid_at": None}
    return view


def mask_refund(store: Store, view: dict[str, Any]) -> dict[str, Any]:
    if view["status"] == "SUCCESS" and UNREPORTED in marks_of(store, view["channel"], view["out_refund_no"]):
        return {**view, "status": "PROCESSING", "finished_at": None}
    return view


def mask_payout(store: Store, view: dict[str, Any]) -> dict[str, Any]:
    if view["status"] == "PAID" and UNREPORTED in marks_of(store, "bank", view["payout_no"]):
        return {**view, "status": "PROCESSING", "bank_ref": None}
    return view
