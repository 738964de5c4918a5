"""What a chaos run must leave behind, read from the three places that keep score: the platform's
database, the sandbox's own records of what each outside party did, and Temporal.

Duplicates: an outside effect the ledger books twice, one the outside party did twice for one platform
number, or an order settled twice. Lost: a flow that did not finish, or an outside effect the ledger
never booked. Money out: what the channels refunded and the bank paid, against the ledger's postings."""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass, field
from pathlib import Path

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine
from temporalio.client import Client

from db.engine import make_session_factory, unit_of_work
from db.ledger import trial_balance
from db.ledger_checks import channel_disagreements, ledger_disagreements
from ops.sandbox.store import HOLDINGS_SQL
from workflows.ids import PAYOUT_BATCHER_WORKFLOW_ID

# Flows that live for ever by design (continue-as-new): running at the end is their normal state.
LONG_LIVED = (PAYOUT_BATCHER_WORKFLOW_ID,)

_POSTED_TWICE = text("""
    SELECT tx_code, reference, count(*) AS n FROM journal_entries
    WHERE tx_code IN ('PAYMENT_CAPTURED', 'REFUND_BEFORE_SETTLEMENT', 'REFUND_AFTER_SETTLEMENT',
                      'MANUAL_REFUND_PAID', 'WITHDRAWAL_PAID', 'WITHDRAWAL_FAILED', 'DEPOSIT_PAID')
    GROUP BY tx_code, reference HAVING count(*) > 1
""")
_SETTLED_TWICE = text("SELECT order_no, count(*) AS n FROM settlement_lines GROUP BY order_no HAVING count(*) > 1")
_PAID_AND_UNFROZEN = text("""
    SELECT reference FROM journal_entries WHERE tx_code IN ('WITHDRAWAL_PAID', 'WITHDRAWAL_FAILED')
    GROUP BY reference HAVING count(DISTINCT tx_code) > 1
""")
_BOOKED = text("SELECT tx_code, reference FROM journal_entries WHERE tx_code = ANY(:codes)")
_LEDGER_OUT = text("""
    SELECT coalesce(sum(l.amount_minor), 0) FROM journal_lines l
    JOIN journal_entries e ON e.id = l.entry_id JOIN ledger_accounts a ON a.id = l.account_id
    WHERE l.side = 'C' AND (
        (e.tx_code IN ('REFUND_BEFORE_SETTLEMENT', 'REFUND_AFTER_SETTLEMENT') AND a.code LIKE :clearing)
        OR (e.tx_code = 'WITHDRAWAL_PAID' AND a.code LIKE :payout))
""")

_OUT_ACCOUNTS = {"clearing": "channel:%:clearing", "payout": "bank:%:payout_clearing"}


@dataclass
class Verdict:
    kills: int
    flows: int = 0
    duplicates: list[str] = field(default_factory=list)
    lost: list[str] = field(default_factory=list)
    disagreements: list[str] = field(default_factory=list)  # the ledger against the business records
    balanced: bool = False
    sandbox_out_minor: int = 0
    ledger_out_minor: int = 0

    @property
    def ok(self) -> bool:
        return (
            not self.duplicates and not self.lost and self.balanced and self.sandbox_out_minor == self.ledger_out_minor
        )

    def summary(self) -> dict[str, object]:
        return {
            "kills": self.kills,
            "flows": self.flows,
            "duplicates": len(self.duplicates),
            "lost": len(self.lost),
            "balanced": self.balanced,
            "sandbox_out_minor": self.sandbox_out_minor,
            "ledger_out_minor": self.ledger_out_minor,
        }


async def unfinished_flows(temporal: Client) -> list[str]:
    return [
        f"{wf.id} is still running"
        async for wf in temporal.list_workflows('ExecutionStatus="Running"')
        if wf.id not in LONG_LIVED
    ]


async def judge(verdict: Verdict, engine: AsyncEngine, sandbox_db: Path, temporal: Client) -> Verdict:
    verdict.flows = sum([1 async for _ in temporal.list_workflows("")])
    verdict.lost += await unfinished_flows(temporal)
    verdict.lost += [
        f"{wf.id} ended {wf.status.name if wf.status else '?'}"
        async for wf in temporal.list_workflows('ExecutionStatus!="Running" AND ExecutionStatus!="Completed"')
        if not wf.id.startswith(PAYOUT_BATCHER_WORKFLOW_ID)  # continue-as-new shows as its own status
    ]
    outside = _sandbox_effects(sandbox_db)
    async with unit_of_work(make_session_factory(engine)) as session:
        verdict.duplicates += [
            f"{r.tx_code} {r.reference} posted {r.n} times" for r in await session.execute(_POSTED_TWICE)
        ]
        verdict.duplicates += [f"order {r.order_no} settled {r.n} times" for r in await session.execute(_SETTLED_TWICE)]
        verdict.duplicates += [
            f"withdrawal {r.reference} both paid and unfrozen" for r in await session.execute(_PAID_AND_UNFROZEN)
        ]
        booked = {
            (r.tx_code, r.reference)
            for r in await session.execute(
                _BOOKED,
                {
                    "codes": [
                        "PAYMENT_CAPTURED",
                        "REFUND_BEFORE_SETTLEMENT",
                        "REFUND_AFTER_SETTLEMENT",
                        "WITHDRAWAL_PAID",
                        "DEPOSIT_PAID",
                    ]
                },
            )
        }
        verdict.ledger_out_minor = int((await session.execute(_LEDGER_OUT, _OUT_ACCOUNTS)).scalar_one())
        # Balanced means the ledger agrees with itself and with the business records it books.
        verdict.disagreements = sorted(
            await ledger_disagreements(session) | await channel_disagreements(session, _held(sandbox_db))
        )
        verdict.balanced = bool((await trial_balance(session))["balanced"]) and not verdict.disagreements
    for kind, number in outside.paid:
        codes = {
            "payment": ("PAYMENT_CAPTURED", "DEPOSIT_PAID"),
            "refund": ("REFUND_BEFORE_SETTLEMENT", "REFUND_AFTER_SETTLEMENT"),
            "payout": ("WITHDRAWAL_PAID",),
        }[kind]
        if not any((code, number) in booked for code in codes):
            verdict.lost.append(f"the sandbox did {kind} {number} but the ledger never booked it")
    verdict.duplicates += outside.overpaid
    verdict.sandbox_out_minor = outside.out_minor
    return verdict


@dataclass
class _Outside:
    paid: list[tuple[str, str]]
    overpaid: list[str]
    out_minor: int


def _held(path: Path) -> dict[tuple[str, str], int]:
    """What the sandbox's channels say they hold of the platform's money."""
    db = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    try:
        return {(ch, cur): int(amount) for ch, cur, amount in db.execute(HOLDINGS_SQL)}
    finally:
        db.close()


def _sandbox_effects(path: Path) -> _Outside:
    db = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    try:
        paid = [("payment", r[0]) for r in db.execute("SELECT out_trade_no FROM orders WHERE status = 'SUCCESS'")]
        paid += [("refund", r[0]) for r in db.execute("SELECT out_refund_no FROM refunds WHERE status = 'SUCCESS'")]
        paid += [("payout", r[0]) for r in db.execute("SELECT payout_no FROM bank_payouts WHERE status = 'PAID'")]
        # A channel that refunded more than it was paid for one order refunded something twice.
        overpaid = [
            f"{ch} refunded {refunded} on {no}, paid {amount}"
            for ch, no, amount, refunded in db.execute("""
                SELECT o.channel, o.out_trade_no, o.amount_minor, sum(r.amount_minor) FROM orders o
                JOIN refunds r ON r.channel = o.channel AND r.out_trade_no = o.out_trade_no AND r.status = 'SUCCESS'
                GROUP BY o.channel, o.out_trade_no, o.amount_minor HAVING sum(r.amount_minor) > o.amount_minor
            """)
        ]
        out = db.execute("SELECT coalesce(sum(amount_minor), 0) FROM refunds WHERE status = 'SUCCESS'").fetchone()[0]
        out += db.execute("SELECT coalesce(sum(amount_minor), 0) FROM bank_payouts WHERE status = 'PAID'").fetchone()[0]
    finally:
        db.close()
    return _Outside(paid, overpaid, int(out))
