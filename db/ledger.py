"""Posting to the double-entry ledger, and the checks that prove it is sound.

A posting is part of one database transaction: open missing accounts, then one statement locks every
touched balance row in a fixed order (code, currency) so concurrent postings queue instead of
deadlocking, inserts the entry and its lines and moves the balances. The entry's idempotency key is
unique: posting the same key again returns the first entry; the same key with different content is
refused.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import select, text
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from db.engine import fetch_prepared
from db.models import JournalEntry, LedgerAccount
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
    return _repeat(posting, found.id, found.content_hash)


def _repeat(posting: Posting, entry_id: int, content_hash: str) -> Posted:
    if content_hash != posting.content_hash():
        raise KeyReused(f"ledger key {posting.idempotency_key!r} was already posted with different content")
    return Posted(entry_id=entry_id, created=False)


# A posting in one statement, so the balance rows it locks are held for the rest of one round trip (and
# the commit) rather than for one round trip per step.
#
# `locked` takes the row locks, in code order (one currency), and only when every account the posting
# touches exists in the statement's snapshot; otherwise it locks nothing and the caller opens the missing
# accounts and runs the statement again. That is what keeps the order total: a statement that locked the
# accounts it could see and was then run again would hold a later account while asking for an earlier
# one (a cycle with anyone queued the right way round).
#
# Everything that writes reads the locked rows, so it runs only once all of them are held: `moves` works
# out each line's balance after it from the locked (newest) balances, `entry` is inserted only if nothing
# would go negative that may not (ON CONFLICT DO NOTHING: a posting of the same key may have committed
# while we waited), `written` and `moved` write the lines and the new balances of that entry. A key already
# posted locks nothing and writes nothing.
_POST = """
WITH seen AS (
    SELECT id, content_hash FROM journal_entries WHERE idempotency_key = %(key)s
), present AS (
    SELECT count(*) AS n FROM ledger_accounts WHERE currency = %(currency)s AND code = ANY(CAST(%(codes)s AS text[]))
), locked AS (
    SELECT id, code, balance_minor, may_go_negative FROM ledger_accounts
    WHERE currency = %(currency)s AND code = ANY(CAST(%(codes)s AS text[]))
      AND NOT EXISTS (SELECT 1 FROM seen) AND (SELECT n FROM present) = %(n_codes)s
    ORDER BY code
    FOR UPDATE
), moves AS (
    SELECT l.n, a.id AS account_id, a.code, a.may_go_negative, l.side, l.amount,
           a.balance_minor + sum(l.delta) OVER (PARTITION BY a.id ORDER BY l.n) AS after
    FROM unnest(CAST(%(line_codes)s AS text[]), CAST(%(sides)s AS text[]), CAST(%(amounts)s AS bigint[]),
                CAST(%(deltas)s AS bigint[])) WITH ORDINALITY AS l(code, side, amount, delta, n)
    JOIN locked a ON a.code = l.code
), final AS (
    SELECT DISTINCT ON (account_id) account_id, code, after, may_go_negative FROM moves ORDER BY account_id, n DESC
), refused AS (
    SELECT code, after FROM final WHERE after < 0 AND NOT may_go_negative ORDER BY code LIMIT 1
), entry AS (
    INSERT INTO journal_entries (tx_code, idempotency_key, reference, currency, content_hash)
    SELECT %(tx_code)s, %(key)s, %(reference)s, %(currency)s, %(hash)s
    WHERE (SELECT count(*) FROM locked) = %(n_codes)s AND NOT EXISTS (SELECT 1 FROM refused)
    ON CONFLICT (idempotency_key) DO NOTHING
    RETURNING id
), written AS (
    INSERT INTO journal_lines (entry_id, account_id, side, amount_minor, balance_after_minor)
    SELECT entry.id, m.account_id, m.side, m.amount, m.after FROM entry, moves m ORDER BY m.n
), moved AS (
    UPDATE ledger_accounts a SET balance_minor = f.after FROM final f, entry WHERE a.id = f.account_id
)
SELECT (SELECT id FROM entry) AS entry_id, (SELECT id FROM seen) AS seen_id,
       (SELECT content_hash FROM seen) AS seen_hash, (SELECT count(*) FROM locked) AS accounts,
       (SELECT code FROM refused) AS refused_code, (SELECT after FROM refused) AS refused_balance
"""

# (code, currency) of accounts seen to exist. Accounts are never deleted, so this only saves the insert
# that opens missing ones; should it be wrong (seen by a transaction that has not committed, or that rolled
# back), the statement finds an account missing, locks nothing, and the posting opens it and runs again.
_opened: set[tuple[str, str]] = set()


async def _run(session: AsyncSession, params: dict[str, object]) -> Any:
    # It runs while the hot balance rows wait, so it skips the ORM's layers.
    return await fetch_prepared(session, _POST, params)


async def post(session: AsyncSession, posting: Posting) -> Posted:
    """Write `posting` inside the caller's transaction (the caller's unit of work commits it)."""
    codes = sorted({ln.account for ln in posting.lines})
    params = {
        "key": posting.idempotency_key,
        "currency": posting.currency,
        "codes": codes,
        "line_codes": [ln.account for ln in posting.lines],
        "sides": [ln.side.value for ln in posting.lines],
        "amounts": [ln.amount_minor for ln in posting.lines],
        "deltas": [signed_delta(account_spec(ln.account), ln.side, ln.amount_minor) for ln in posting.lines],
        "n_codes": len(codes),
        "tx_code": posting.code.value,
        "reference": posting.reference,
        "hash": posting.content_hash(),
    }
    if not _opened.issuperset((code, posting.currency) for code in codes):
        await open_accounts(session, codes, posting.currency)
    row = await _run(session, params)
    if row.seen_id is None and row.accounts < len(codes):  # locked nothing: open what is missing, run again
        await open_accounts(session, codes, posting.currency)
        row = await _run(session, params)
    if row.seen_id is not None:
        return _repeat(posting, row.seen_id, row.seen_hash)
    if row.accounts < len(codes):
        raise RuntimeError(f"ledger accounts {codes} ({posting.currency}) are still missing after opening them")
    if row.refused_code is not None:
        raise NegativeBalance(
            f"{posting.code.value} would take {row.refused_code} ({posting.currency}) to {row.refused_balance}; "
            "it may not go negative"
        )
    _opened.update((code, posting.currency) for code in codes)
    if row.entry_id is None:  # the key was posted by a transaction that committed while we waited
        seen = await _existing(session, posting)
        assert seen is not None
        return seen
    return Posted(entry_id=row.entry_id, created=True)


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
