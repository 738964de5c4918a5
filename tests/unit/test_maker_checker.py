"""Maker-checker: the same person is caught by name (any key, any spelling) or by key (older records)."""

from __future__ import annotations

import pytest

from domain.maker_checker import (
    Who,
    check_payout_resolver,
    check_refund_approver,
    check_second_auditor,
    check_statement_approver,
)
from domain.refusals import Refusal, Refused

CHECKS = [
    (check_refund_approver, Refusal.SAME_PERSON),
    (check_payout_resolver, Refusal.SAME_PERSON),
    (check_statement_approver, Refusal.SAME_PERSON),
    (check_second_auditor, Refusal.SAME_AUDITOR),
]


@pytest.mark.parametrize(("check", "code"), CHECKS)
@pytest.mark.parametrize(
    ("maker", "checker"),
    [
        (Who("alice", 1), Who("alice", 2)),  # another key of the same person
        (Who("alice"), Who(" Alice ")),  # the same person spelled differently
        (Who(None, 7), Who("bob", 7)),  # a record from before keys carried people: the key tells
    ],
)
def test_the_maker_cannot_check(check, code, maker: Who, checker: Who) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(Refused) as caught:
        check(maker, checker)
    assert caught.value.code is code


@pytest.mark.parametrize(("check", "code"), CHECKS)
@pytest.mark.parametrize(
    ("maker", "checker"),
    [(Who("alice", 1), Who("bob", 2)), (Who(None), Who("bob")), (Who(None, None), Who(None, None))],
)
def test_someone_else_may(check, code, maker: Who, checker: Who) -> None:  # type: ignore[no-untyped-def]
    check(maker, checker)
