import pytest
from hypothesis import given
from hypothesis import strategies as st

from domain import accounts
from domain import ledger as rules
from domain.accounts import Side


def _sums(p: rules.Posting) -> tuple[int, int]:
    return (
        sum(ln.amount_minor for ln in p.lines if ln.side is Side.DEBIT),
        sum(ln.amount_minor for ln in p.lines if ln.side is Side.CREDIT),
    )


@given(net=st.integers(0, 10**9), commission=st.integers(0, 10**7), promoter=st.integers(0, 10**6))
def test_settlement_releases_exactly_what_it_credits(net, commission, promoter):
    if net + commission + promoter == 0:
        return
    p = rules.settlement(
        "k",
        "s",
        "CNY",
        merchant_id="m1",
        merchant_net=net,
        commission=commission,
        promoters={"p1": promoter, "p2": promoter // 2},
    )
    debit, credit = _sums(p)
    assert debit == credit == net + commission + promoter + promoter // 2
    assert [ln.account for ln in p.lines if ln.side is Side.DEBIT] == [accounts.ESCROW]


def test_the_starting_rules_post_to_the_accounts_of_the_design():
    cases = [
        (rules.payment_captured("k", "r", "CNY", 5, "wechat"), ("channel:wechat:clearing", "platform:escrow")),
        (rules.refund_before_settlement("k", "r", "CNY", 5, "wechat"), ("platform:escrow", "channel:wechat:clearing")),
        (rules.withdrawal_requested("k", "r", "CNY", 5, "m1"), ("merchant:m1:available", "merchant:m1:withdrawing")),
        (
            rules.withdrawal_paid("k", "r", "CNY", 5, "m1", "icbc"),
            ("merchant:m1:withdrawing", "bank:icbc:payout_clearing"),
        ),
        (rules.withdrawal_failed("k", "r", "CNY", 5, "m1"), ("merchant:m1:withdrawing", "merchant:m1:available")),
        (rules.deposit_paid("k", "r", "CNY", 5, "alipay", "m1"), ("channel:alipay:clearing", "merchant:m1:deposit")),
        (rules.manual_refund_paid("k", "r", "CNY", 5, "icbc"), ("platform:escrow", "bank:icbc:payout_clearing")),
    ]
    for posting, (debit, credit) in cases:
        assert [(ln.account, ln.side) for ln in posting.lines] == [(debit, Side.DEBIT), (credit, Side.CREDIT)]


def test_clawback_debits_merchant_and_commission_and_credits_the_channel():
    p = rules.refund_after_settlement(
        "k", "r", "CNY", channel="wechat", merchant_id="m1", from_available=60, from_clawback=30, commission_share=10
    )
    assert _sums(p) == (100, 100)
    assert {ln.account for ln in p.lines if ln.side is Side.DEBIT} == {
        "merchant:m1:available",
        "merchant:m1:clawback",
        accounts.COMMISSION,
    }


def test_content_hash_tells_a_repeat_from_a_different_entry():
    a = rules.payment_captured("k", "r", "CNY", 5, "wechat")
    assert a.content_hash() == rules.payment_captured("k", "r", "CNY", 5, "wechat").content_hash()
    assert a.content_hash() != rules.payment_captured("k", "r", "CNY", 6, "wechat").content_hash()


def test_postings_refuse_bad_currency_zero_amounts_and_single_lines():
    with pytest.raises(ValueError, match="currency"):
        rules.payment_captured("k", "r", "XXX", 5, "wechat")
    with pytest.raises(ValueError):
        rules.payment_captured("k", "r", "CNY", 0, "wechat")
    with pytest.raises(ValueError):
        rules.Posting(
            code=rules.TxCode.RECON_ADJUST,
            idempotency_key="k",
            currency="CNY",
            lines=[rules.Line(account=accounts.SUSPENSE, side=Side.DEBIT, amount_minor=1)],
        )


def test_account_specs_keep_customer_and_merchant_money_non_negative():
    assert not accounts.account_spec("platform:escrow").may_go_negative
    assert not accounts.account_spec("merchant:m1:available").may_go_negative
    assert accounts.account_spec("channel:wechat:clearing").may_go_negative
    with pytest.raises(accounts.UnknownAccount):
        accounts.account_spec("merchant:m1:savings")
