"""Which action for which discrepancy (domain/recon/discrepancy.py): the automatic ones where the rule is
clear, finance otherwise; which finance resolutions fit; the suspense postings balance and clear."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from domain.ledger import SUSPENSE, Side, TxCode
from domain.recon.discrepancy import (
    AutoAction,
    DiscrepancyFacts,
    FinanceAction,
    check_finance_action,
    cleared,
    decide,
    parked,
)
from domain.recon.runs import DiscrepancyType
from domain.refusals import Refusal, Refused

T = DiscrepancyType


def facts(type_: DiscrepancyType, kind: str = "PAYMENT", **kw: object) -> DiscrepancyFacts:
    base: dict[str, object] = {"discrepancy_id": 7, "source": "wechat", "type": type_, "kind": kind}
    return DiscrepancyFacts.model_validate(base | {"our_no": "PAY1", "status": "OPEN"} | kw)


@pytest.mark.parametrize(
    ("f", "action"),
    [
        (facts(T.LONG, order_status="AWAITING_PAYMENT", payment_status="PENDING"), AutoAction.CAPTURE),
        (facts(T.LONG, order_status="CANCELLED", payment_status="CLOSED"), AutoAction.CAPTURE_AND_REFUND),
        (facts(T.LONG, order_status="AWAITING_MERCHANT", payment_status="SUCCEEDED"), AutoAction.NOTHING),
        (facts(T.LONG, order_status="CANCELLED", payment_status="PENDING"), AutoAction.FINANCE),
        (facts(T.LONG, order_status=None, payment_status=None), AutoAction.FINANCE),
        (facts(T.DUPLICATE_PAYMENT, extra_channel="alipay"), AutoAction.REFUND_EXTRA),
        (facts(T.DUPLICATE_PAYMENT, extra_channel="alipay", extra_refunded=True), AutoAction.NOTHING),
        (facts(T.DUPLICATE_PAYMENT), AutoAction.FINANCE),
        (facts(T.STATUS_MISMATCH, "REFUND", refund_status="PROCESSING"), AutoAction.COMPLETE_REFUND),
        (facts(T.STATUS_MISMATCH, "REFUND", refund_status="SUCCEEDED"), AutoAction.NOTHING),
        (facts(T.STATUS_MISMATCH, "REFUND", refund_status="MANUAL_PENDING"), AutoAction.FINANCE),
        (facts(T.LONG, "REFUND", refund_status=None), AutoAction.FINANCE),
        (facts(T.STATUS_MISMATCH, "PAYOUT", withdrawal_status="UNKNOWN", statement_status="PAID"),
         AutoAction.PAYOUT_RESULT),
        (facts(T.STATUS_MISMATCH, "PAYOUT", withdrawal_status="PAID", statement_status="PAID"), AutoAction.NOTHING),
        (facts(T.STATUS_MISMATCH, "PAYOUT", withdrawal_status="PAID", statement_status="FAILED"), AutoAction.FINANCE),
        (facts(T.SHORT), AutoAction.HOLD),
        (facts(T.AMOUNT_MISMATCH, statement_minor=200, platform_minor=100), AutoAction.FINANCE),
        (facts(T.FEE_MISMATCH), AutoAction.FINANCE),
    ],
)  # fmt: skip
def test_each_type_and_its_facts_get_one_action(f: DiscrepancyFacts, action: AutoAction) -> None:
    assert decide(f).action is action


def test_finance_actions_must_fit_the_facts() -> None:
    waiting = facts(T.LONG, order_status="AWAITING_PAYMENT", payment_status="PENDING", statement_minor=100)
    closed = facts(T.LONG, order_status="CANCELLED", payment_status="CLOSED", statement_minor=100)
    check_finance_action(waiting, FinanceAction.COMPLETE_ORDER)
    check_finance_action(closed, FinanceAction.REFUND)
    for f, action in ((closed, FinanceAction.COMPLETE_ORDER), (waiting, FinanceAction.REFUND)):
        with pytest.raises(Refused) as exc:
            check_finance_action(f, action)
        assert exc.value.code is Refusal.ACTION_NOT_APPLICABLE
    with pytest.raises(Refused):
        check_finance_action(facts(T.STATUS_MISMATCH, "PAYOUT"), FinanceAction.WRITE_OFF)


@given(
    kind=st.sampled_from(["PAYMENT", "REFUND"]),
    statement=st.one_of(st.none(), st.integers(1, 10**9)),
    platform=st.integers(1, 10**9),
    action=st.sampled_from([FinanceAction.ADJUST, FinanceAction.WRITE_OFF]),
)
def test_a_parked_difference_moves_clearing_to_the_statement_and_its_clearing_empties_suspense(
    kind: str, statement: int | None, platform: int, action: FinanceAction
) -> None:
    type_ = T.SHORT if statement is None else T.AMOUNT_MISMATCH
    f = facts(type_, kind, statement_minor=statement, platform_minor=platform)
    park, clear = parked(f), cleared(f, action)
    if (statement or 0) == platform:
        assert park is None and clear is None
        return
    assert park is not None and clear is not None
    assert (park.code, clear.code) == (TxCode.RECON_SUSPENSE, TxCode.RECON_ADJUST)

    def moved(account: str) -> int:  # signed debit movement of both postings on the account
        lines = [ln for p in (park, clear) for ln in p.lines if ln.account == account]
        return sum(ln.amount_minor if ln.side is Side.DEBIT else -ln.amount_minor for ln in lines)

    assert moved(SUSPENSE) == 0  # resolved: nothing left in suspense
    # The channel's clearing moves by what the statement says beyond the platform's record (a larger
    # refund on the statement took more out).
    sign = 1 if kind == "PAYMENT" else -1
    assert moved("channel:wechat:clearing") == sign * ((statement or 0) - platform)


def test_movements_of_payouts_and_automatic_types_are_not_parked() -> None:
    assert parked(facts(T.AMOUNT_MISMATCH, "PAYOUT", statement_minor=5, platform_minor=3)) is None
    assert parked(facts(T.LONG, statement_minor=5)) is None
    assert cleared(facts(T.AMOUNT_MISMATCH, statement_minor=5, platform_minor=3), FinanceAction.REFUND) is None
