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
    balanced: bool
    currencies: list[CurrencyTotals]
    problems: list[str]
