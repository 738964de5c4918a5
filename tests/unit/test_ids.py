"""Ids that reach account codes, currencies and datetimes are checked where they enter (pure rules)."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from domain.accounts import account_spec
from domain.commission import RuleSpec
from domain.ids import is_code_id
from domain.merchants import Application
from domain.orders import CreateOrderRequest

ITEM = {"sku_id": "sku-1", "name": "Haircut", "category_id": "beauty", "unit_price_minor": 5000, "quantity": 1}
ORDER = {"customer_id": "c-1", "merchant_id": "m-1", "items": [ITEM], "currency": "CNY"}


@pytest.mark.parametrize("good", ["m-1", "promo_42", "A" * 64, "m-20261130abcdef123456"])
def test_a_good_id_is_a_valid_account_code_segment(good):
    assert is_code_id(good)
    account_spec(f"promoter:{good}:payable")  # in the chart of accounts


@pytest.mark.parametrize("bad", ["", "promo:42 推广", "a:b", "a b", "a.b", "A" * 65, "x\n"])
def test_a_bad_id_is_refused(bad):
    assert not is_code_id(bad)


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("promoter_id", "promo:42 推广"),
        ("merchant_id", "m:1"),
        ("customer_id", "c 1"),
        ("channel", "we:chat"),
        ("campaign_id", "c/1"),
        ("currency", "cny"),
        ("currency", "CNYX"),
    ],
)
def test_an_order_request_names_the_bad_field(field, value):
    with pytest.raises(ValidationError) as err:
        CreateOrderRequest.model_validate({**ORDER, field: value})
    assert field in {str(e["loc"][0]) for e in err.value.errors()}


@pytest.mark.parametrize("field", ["sku_id", "category_id"])
def test_an_order_line_names_the_bad_id(field):
    with pytest.raises(ValidationError) as err:
        CreateOrderRequest.model_validate({**ORDER, "items": [{**ITEM, field: "x:y"}]})
    assert field in {str(e["loc"][-1]) for e in err.value.errors()}


def test_a_merchant_application_category_and_currency_are_checked():
    with pytest.raises(ValidationError) as err:
        Application.model_validate({"category": "food:x", "currency": "cny"})
    names = {str(e["loc"][0]) for e in err.value.errors()}
    assert {"category", "currency"} <= names


@pytest.mark.parametrize(
    "window",
    [
        {"valid_from": "2026-01-01T00:00:00"},
        {"valid_from": "2026-01-01T00:00:00Z", "valid_to": "2027-01-01T00:00:00"},
    ],
)
def test_a_commission_rule_window_must_be_aware(window):
    with pytest.raises(ValidationError) as err:
        RuleSpec.model_validate({"scope": "default", "rate_bps": 100, **window})
    assert "timezone" in str(err.value)


def test_an_aware_commission_rule_window_is_fine():
    rule = RuleSpec.model_validate(
        {
            "scope": "default",
            "rate_bps": 100,
            "valid_from": "2026-01-01T00:00:00Z",
            "valid_to": "2027-01-01T08:00:00+08:00",
        }
    )
    assert rule.valid_to is not None and rule.valid_to > rule.valid_from
