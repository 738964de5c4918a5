"""Pure payout rules: what a refused submit proves, and how a late bank result meets a recorded outcome."""

from __future__ import annotations

from datetime import UTC, datetime

from domain.withdrawals import (
    BankBatchAnswer,
    BankPayoutItem,
    OpenBatch,
    PayoutTerms,
    WithdrawalStatus,
    batch_is_full,
    batch_period,
    batches_to_follow,
    late_result,
    nothing_was_paid,
)


def test_only_the_banks_no_such_batch_proves_nothing_was_paid():
    assert nothing_was_paid(BankBatchAnswer(known=False))
    assert not nothing_was_paid(None)  # the question itself was refused: unknown
    held = BankBatchAnswer(known=True, items=[BankPayoutItem(payout_no="WD1", status="PROCESSING")])
    assert not nothing_was_paid(held)
    assert not nothing_was_paid(BankBatchAnswer(known=True))


def test_a_late_result_settles_an_open_withdrawal_and_is_compared_with_a_final_one():
    for waiting in (WithdrawalStatus.SUBMITTED, WithdrawalStatus.UNKNOWN):
        assert late_result(waiting, "PAID") == late_result(waiting, "FAILED") == "OPEN"
    assert late_result(WithdrawalStatus.PAID, "PAID") == "AGREES"
    assert late_result(WithdrawalStatus.FAILED, "FAILED") == "AGREES"
    assert late_result(WithdrawalStatus.PAID, "FAILED") == "CONFLICT"
    assert late_result(WithdrawalStatus.FAILED, "PAID") == "CONFLICT"


def test_a_starting_batcher_follows_what_was_carried_over_and_what_the_database_has_at_the_bank():
    t0, t1 = datetime(2026, 1, 1, tzinfo=UTC), datetime(2026, 1, 2, tzinfo=UTC)
    carried = [OpenBatch(batch_id="PB1", withdrawal_ids=["WD2"], opened_at=t0)]
    stored = [
        OpenBatch(batch_id="PB1", withdrawal_ids=["WD1", "WD2"], opened_at=t1),
        OpenBatch(batch_id="PB2", withdrawal_ids=["WD3"], opened_at=t1),
    ]
    follow = {b.batch_id: b for b in batches_to_follow(carried, stored)}
    assert follow["PB1"].withdrawal_ids == ["WD1", "WD2"] and follow["PB1"].opened_at == t0
    assert follow["PB2"].withdrawal_ids == ["WD3"]
    assert batches_to_follow([], []) == []


def test_a_batch_closes_at_max_items_or_at_the_end_of_its_period():
    terms = PayoutTerms(batch_seconds=60, max_items=3, unknown_escalate_seconds=600, notify_url="http://x")
    assert not batch_is_full(2, terms)
    assert batch_is_full(3, terms)
    assert batch_is_full(4, terms)  # more queued than a batch takes: the rest waits for the next one
    assert batch_period(terms) == 60
    assert batch_period(terms.model_copy(update={"batch_seconds": 0})) > 0  # a zero period still yields a timer
