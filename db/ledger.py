"""Posting to the double-entry ledger, and the checks that prove it is sound.

A posting is one database transaction: open missing accounts, lock every touched balance row in a
fixed order (code, currency) so concurrent postings queue instead of deadlocking, insert the entry
and its lines, move the balances. The entry's idempotency key is unique: posting the same key again
returns the first entry; the same key with different content is refused.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import select, text
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from db.models import JournalEntry, JournalLine, LedgerAccount
from domain.accounts import account_spec, signed_delta
from domain.ledger import Posting
from domain.refusals import Refusal


class LedgerError(Exception):
    """A posting the ledger refuses: it would break a rule, so retrying cannot help."""

    type = Refusal.LEDGER_ERROR


class NegativeBalance(LedgerError):
    type = Refusal.NEGATIVE_BALANCE


class KeyReused(LedgerError):
    type = Refusal.IDEMPOTENCY_KEY_REUSED


@dataclass(frozen=True)
class Posted:
    entry_id: int
    created: bool  # False when the key had been posted before and nothing changed


async def open_accounts(session: AsyncSession, codes: list[str], currency: str) -> None:
    rows = []
    for code in codes:
        spec = account_spec(code)
        rows.append(
            {
                "code": code,
                "currency": currency,
                "kind": spec.kind.value,
                "normal_side": spec.normal_side.value,
                "may_go_negative": spec.may_go_negative,
                "balance_minor": 0,
            }
        )
    await session.execute(
        insert(LedgerAccount).values(rows).on_conflict_do_nothing(index_elements=["code", "currency"])
    )


async def _existing(session: AsyncSession, posting: Posting) -> Posted | None:
    found = (
        await session.execute(select(JournalEntry).where(JournalEntry.idempotency_key == posting.idempotency_key))
    ).scalar_one_or_none()
    if found is None:
        return None
    if found.content_hash != posting.content_hash():
        raise KeyReused(f"ledger key {posting.idempotency_key!r} was already posted with different content")
    return Posted(entry_id=found.id, created=False)


async def post(session: AsyncSession, posting: Posting) -> Posted:
    """Write `posting` inside the caller's transaction (the caller's unit of work commits it)."""
    if (seen := await _existing(session, posting)) is not None:
        return seen

    codes = sorted({ln.account for ln in posting.lines})
    await open_accounts(session, codes, posting.currency)
    accounts = {
        a.code: a
        for a in (
            await session.execute(
                select(LedgerAccount)
                .where(LedgerAccount.code.in_(codes), LedgerAccount.currency == posting.currency)
                .order_by(LedgerAccount.code, LedgerAccount.currency)
                .with_for_update()
            )
        ).scalars()
    }
    # A concurrent posting of the same key may have committed while we waited for the locks.
    entry_id = (
        await session.execute(
            insert(JournalEntry)
            .values(
                tx_code=posting.code.value,
                idempotency_key=posting.idempotency_key,
                reference=posting.reference,
                currency=posting.currency,
                content_hash=posting.content_hash(),
            )
            .on_conflict_do_nothing(index_elements=["idempotency_key"])
            .returning(JournalEntry.id)
        )
    ).scalar_one_or_none()
    if entry_id is None:
        seen = await _existing(session, posting)
        assert seen is not None
        return seen

    balances = {code: acc.balance_minor for code, acc in accounts.items()}
    lines = []
    for ln in posting.lines:
        acc = accounts[ln.account]
        balances[ln.account] += signed_delta(account_spec(ln.account), ln.side, ln.amount_minor)
        lines.append(
            {
                "entry_id": entry_id,
                "account_id": acc.id,
                "side": ln.side.value,
                "amount_minor": ln.amount_minor,
                "balance_after_minor": balances[ln.account],
            }
        )
    for code, balance in balances.items():
        if balance < 0 and not accounts[code].may_go_negative:
            raise NegativeBalance(
                f"{posting.code.value} would take {code} ({posting.currency}) to {balance}; it may not go negative"
            )
    await session.execute(insert(JournalLine).values(lines))
    for code, balance in balances.items():
        accounts[code].balance_minor = balance
    await session.flush()
    return Posted(entry_id=entry_id, created=True)


async def balance_of(session: AsyncSession, code: str, currency: str) -> int:
    value = (
        await session.execute(
            select(LedgerAccount.balance_minor).where(LedgerAccount.code == code, LedgerAccount.currency == currency)
        )
    ).scalar_one_or_none()
    return value or 0


# --- invariants (ARCHITECTURE.md §2) ------------------------------------------------------------
_UNBALANCED_ENTRIES = text("""
    SELECT e.id FROM journal_entries e JOIN journal_lines l ON l.entry_id = e.id
    GROUP BY e.id
    HAVING sum(CASE WHEN l.side = 'D' THEN l.amount_minor ELSE 0 END)
        <> sum(CASE WHEN l.side = 'C' THEN l.amount_minor ELSE 0 END)
        OR count(*) < 2
""")
_TOTALS = text("""
    SELECT a.currency,
           coalesce(sum(CASE WHEN l.side = 'D' THEN l.amount_minor END), 0) AS debits,
           coalesce(sum(CASE WHEN l.side = 'C' THEN l.amount_minor END), 0) AS credits,
           count(DISTINCT l.entry_id) AS entries
    FROM journal_lines l JOIN ledger_accounts a ON a.id = l.account_id
    GROUP BY a.currency ORDER BY a.currency
""")
_DRIFTED_BALANCES = text("""
    SELECT a.code, a.currency, a.balance_minor,
           coalesce(sum(CASE WHEN l.side = a.normal_side THEN l.amount_minor ELSE -l.amount_minor END), 0) AS from_lines
    FROM ledger_accounts a LEFT JOIN journal_lines l ON l.account_id = a.id
    GROUP BY a.id
    HAVING a.balance_minor <> coalesce(sum(CASE WHEN l.side = a.normal_side THEN l.amount_minor
                                                ELSE -l.amount_minor END), 0)
""")
_FORBIDDEN_NEGATIVE = text(
    "SELECT code, currency, balance_minor FROM ledger_accounts WHERE NOT may_go_negative AND balance_minor < 0"
)
_ENTRIES_WITHOUT_LINES = text(
    "SELECT e.id FROM journal_entries e WHERE NOT EXISTS (SELECT 1 FROM journal_lines l WHERE l.entry_id = e.id)"
)


async def trial_balance(session: AsyncSession) -> dict[str, object]:
    """Totals per currency and every invariant violation found; `balanced` is true when there are none."""
    currencies = [
        {
            "currency": r.currency,
            "debits_minor": int(r.debits),
            "credits_minor": int(r.credits),
            "entries": int(r.entries),
            "balanced": r.debits == r.credits,
        }
        for r in await session.execute(_TOTALS)
    ]
    problems: list[str] = []
    problems += [f"entry {r.id} does not balance" for r in await session.execute(_UNBALANCED_ENTRIES)]
    problems += [f"entry {r.id} has no lines" for r in await session.execute(_ENTRIES_WITHOUT_LINES)]
    problems += [
        f"{r.code} ({r.currency}) balance {r.balance_minor} != sum of its lines {r.from_lines}"
        for r in await session.execute(_DRIFTED_BALANCES)
    ]
    problems += [
        f"{r.code} ({r.currency}) is negative ({r.balance_minor}) and may not be"
        for r in await session.execute(_FORBIDDEN_NEGATIVE)
    ]
    problems += [
        f"{c['currency']}: debits {c['debits_minor']} != credits {c['credits_minor']}"
        for c in currencies
        if not c["balanced"]
    ]
    return {"balanced": not problems, "currencies": currencies, "problems": problems}
