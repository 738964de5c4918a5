"""What GET /v1/ledger/trial-balance answers."""

from __future__ import annotations

from pydantic import BaseModel


class CurrencyTotals(BaseModel):
    currency: str
    debits_minor: int
    credits_minor: int
    entries: int
    balanced: bool


class TrialBalance(BaseModel):
    balanced: bool  # the ledger agrees with itself: entries balance, balances are the sum of their lines
    currencies: list[CurrencyTotals]
    problems: list[str]
    # The ledger against the business records it books (escrow, captures, refunds, withdrawing balances):
    # one sentence per disagreement, empty when they agree.
    records_agree: bool
    disagreements: list[str]
