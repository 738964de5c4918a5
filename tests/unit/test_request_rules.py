"""Rules the API used to hold inline: resubmitting an application, and a settlement run's cutoff."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from domain.merchants import check_resubmission
from domain.refusals import Refusal, Refused
from domain.settlement import check_cutoff

NOW = datetime(2026, 12, 1, 3, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    ("status", "category", "code"),
    [
        ("CHANGES_REQUESTED", "home", None),
        ("IN_REVIEW", "home", Refusal.NOT_AWAITING_CHANGES),
        ("ACTIVE", "home", Refusal.NOT_AWAITING_CHANGES),
        ("CHANGES_REQUESTED", "food", Refusal.CATEGORY_CHANGED),
    ],
)
def test_a_resubmission_answers_a_request_for_changes_in_the_same_category(
    status: str, category: str, code: Refusal | None
) -> None:
    try:
        check_resubmission("m-1", status, "home", category)
    except Refused as exc:
        assert exc.code is code
    else:
        assert code is None


@pytest.mark.parametrize(
    ("cutoff", "refused"),
    [(NOW - timedelta(days=1), False), (NOW + timedelta(seconds=1), False), (NOW + timedelta(seconds=2), True)],
)
def test_a_cutoff_is_not_in_the_future(cutoff: datetime, refused: bool) -> None:
    if refused:
        with pytest.raises(Refused) as caught:
            check_cutoff(cutoff, NOW)
        assert caught.value.code is Refusal.CUTOFF_IN_FUTURE
    else:
        check_cutoff(cutoff, NOW)
