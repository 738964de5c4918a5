"""Who may register and manage which providers, and when an order lets its provider go."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from domain.access import Role
from domain.orders import OrderStatus, frees_provider
from domain.providers import ProviderRegistration, may_manage, owner
from domain.refusals import Refusal, Refused


def test_a_merchant_registers_its_own_staff_and_the_service_role_the_pool() -> None:
    assert owner(Role.MERCHANT, "m-1", None) == "m-1"
    assert owner(Role.MERCHANT, "m-1", "m-1") == "m-1"
    assert owner(Role.SERVICE, None, None) is None
    with pytest.raises(Refused) as other:
        owner(Role.MERCHANT, "m-1", "m-2")
    assert other.value.code is Refusal.FORBIDDEN
    with pytest.raises(Refused) as pool:
        owner(Role.SERVICE, None, "m-1")
    assert pool.value.code is Refusal.INVALID_REQUEST


@pytest.mark.parametrize(
    ("role", "key_merchant", "provider_merchant", "allowed"),
    [
        (Role.MERCHANT, "m-1", "m-1", True),
        (Role.MERCHANT, "m-1", "m-2", False),
        (Role.MERCHANT, "m-1", None, False),
        (Role.SERVICE, None, None, True),
        (Role.SERVICE, None, "m-1", False),
        (Role.OPERATOR, None, None, False),
    ],
)
def test_who_manages_a_provider(
    role: Role, key_merchant: str | None, provider_merchant: str | None, allowed: bool
) -> None:
    assert may_manage(role, key_merchant, provider_merchant) is allowed


def test_a_provider_is_held_from_the_offer_until_delivery_or_cancellation() -> None:
    assert {s for s in OrderStatus if frees_provider(s)} == {OrderStatus.DELIVERED, OrderStatus.CANCELLED}


@pytest.mark.parametrize("categories", [[], ["home", "home"], ["a:b"], ["x"] * 21])
def test_a_registration_names_distinct_valid_categories(categories: list[str]) -> None:
    with pytest.raises(ValidationError):
        ProviderRegistration(name="Li", categories=categories)
