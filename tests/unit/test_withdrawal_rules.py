"""Pure payout rules: what a refused submit proves, and how a late bank result meets a recorded outcome."""

from __future__ import annotations

from domain.withdrawals import BankBatchAnswer, BankPayoutItem, WithdrawalStatus, late_result, nothing_was_paid


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
