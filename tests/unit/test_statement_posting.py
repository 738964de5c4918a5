"""The SETTLEMENT entry of one statement, and why one cannot be built (domain/settlement.py)."""

from __future__ import annotations

import pytest

from domain.accounts import COMMISSION, ESCROW, Side, merchant_account, promoter_payable
from domain.settlement import StatementPostingError, statement_posting

ODD = "promoter:promo:42 推广:payable"


def test_a_statement_posting_releases_escrow_to_net_commission_and_promoters_with_the_adjustment():
    posting = statement_posting(
        7, "CNY", merchant_id="m-1", net_minor=9000, commission_minor=500, adjustment_minor=100, promoters={"p-1": 200}
    )
    lines = {(ln.account, ln.side): ln.amount_minor for ln in posting.lines}
    assert lines == {
        (ESCROW, Side.DEBIT): 9700,
        (merchant_account("m-1", "available"), Side.CREDIT): 9100,
        (COMMISSION, Side.CREDIT): 400,
        (promoter_payable("p-1"), Side.CREDIT): 200,
    }
    assert (posting.idempotency_key, posting.reference) == ("settlement:7", "statement-7")


@pytest.mark.parametrize(
    ("currency", "promoters", "reason"),
    [
        ("CNY", {"promo:42 推广": 200}, f"account code {ODD!r} is not in the chart of accounts"),
        ("XTS", {}, "unsupported currency 'XTS'"),
    ],
)
def test_a_statement_that_cannot_be_posted_says_why_in_one_sentence(currency, promoters, reason):
    with pytest.raises(StatementPostingError) as err:
        statement_posting(
            8, currency, merchant_id="m-1", net_minor=900, commission_minor=50, adjustment_minor=0, promoters=promoters
        )
    assert str(err.value) == reason
