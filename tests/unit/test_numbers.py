"""Business numbers (domain/numbers.py): their formats are wire format and recorded history, so a flow
that derives one on replay must derive exactly what it derived when it ran."""

from __future__ import annotations

import re
from datetime import UTC, datetime

from hypothesis import given
from hypothesis import strategies as st

from domain import numbers
from domain.ids import is_code_id

_NUMBER = re.compile(r"^\d{8}[0-9A-F]{12}$")


def test_a_minted_number_is_date_and_48_random_bits() -> None:
    first, second = numbers.new_number(""), numbers.new_number("")
    assert _NUMBER.fullmatch(first) and _NUMBER.fullmatch(second)
    assert first != second
    assert numbers.new_number("RF").startswith("RF")


@given(st.text("0123456789ABCDEF", min_size=20, max_size=20))
def test_ids_from_a_number_fit_an_account_code(number: str) -> None:
    # A merchant id becomes a segment of `merchant:{m}:available`.
    assert is_code_id(numbers.merchant_id(number))
    assert numbers.merchant_id(number) == f"m-{number.lower()}"
    assert numbers.commission_rule_id(number) == f"cr-{number.lower()}"


def test_numbers_a_flow_derives_are_what_recorded_histories_hold() -> None:
    order_no, payment_no = numbers.order_no("20261201ABCDEF012345"), numbers.payment_no("20261201ABCDEF012345")
    assert (order_no, payment_no) == ("ORD20261201ABCDEF012345", "PAY20261201ABCDEF012345")
    assert numbers.cancellation_refund_no(order_no, late=False) == "RF20261201ABCDEF012345C"
    assert numbers.cancellation_refund_no(order_no, late=True) == "RF20261201ABCDEF012345L"
    assert numbers.duplicate_refund_no(payment_no, "alipay") == "RF20261201ABCDEF012345AL"
    assert numbers.deposit_payment_no("m-20261201abcdef012345", 3) == "DEP20261201ABCDEF0123453"
    at = datetime(2026, 12, 1, 8, 30, 5, tzinfo=UTC)
    assert numbers.payout_batch_no(at, "0123456789abcdef") == "PB2026120108300501234567"
    assert numbers.kyc_request_no("m-1", 2, "licence") == "KYC-m-1-v2-licence"
    assert numbers.contract_request_no("m-1", 1) == "CT-m-1-1"
