"""Maker-checker: who may not check their own decision (pure).

People, not keys: one person's second key is still the maker (`domain.access.same_person`). Where a
record comes from before keys carried people, the key ids still tell (an unknown side is never a match).
"""

from __future__ import annotations

from dataclasses import dataclass

from domain.access import same_person
from domain.refusals import Refusal, Refused


@dataclass(frozen=True)
class Who:
    person: str | None
    key_id: int | None = None

    def is_(self, other: Who) -> bool:
        same_key = self.key_id is not None and self.key_id == other.key_id
        return same_key or same_person(self.person, other.person)


def check_checker(maker: Who, checker: Who, detail: str, code: Refusal = Refusal.SAME_PERSON) -> None:
    if maker.is_(checker):
        raise Refused(code, detail)


def check_refund_approver(requester: Who, approver: Who) -> None:
    """Whoever requested a refund (finance too, for finance-initiated refunds) cannot approve its manual
    transfer."""
    check_checker(requester, approver, "whoever requested a refund cannot approve its manual transfer")


def check_payout_resolver(approver: Who, resolver: Who) -> None:
    """Whoever approved a withdrawal cannot also declare what became of its payout."""
    check_checker(approver, resolver, "whoever approved a withdrawal cannot resolve its payout")


def check_statement_approver(adjuster: Who, approver: Who) -> None:
    """Whoever adjusted a statement cannot approve it."""
    check_checker(adjuster, approver, "whoever adjusted a statement cannot approve it")


def check_second_auditor(first: Who, second: Who) -> None:
    """A high-risk application's second review is by a different auditor than its first."""
    check_checker(first, second, "the second review needs a different auditor than the first", Refusal.SAME_AUDITOR)
