"""People behind keys: the handle rule and the maker-checker comparison."""

from __future__ import annotations

import pytest

from domain.access import actor_label, normalize_person, same_person


def test_a_person_is_a_case_insensitive_handle() -> None:
    assert normalize_person("  Alice@Example.COM ") == "alice@example.com"
    assert normalize_person("bob.smith+fin_1") == "bob.smith+fin_1"


@pytest.mark.parametrize("raw", ["", "   ", "two words", "-leading", "p" * 101, "semi;colon", "名字"])
def test_bad_person_handles_are_refused_with_a_reason(raw: str) -> None:
    with pytest.raises(ValueError, match="person"):
        normalize_person(raw)


def test_two_keys_of_one_person_are_the_same_person_whatever_the_case() -> None:
    assert same_person("alice", "ALICE ")
    assert not same_person("alice", "bob")


def test_an_unknown_side_is_never_the_same_person() -> None:
    assert not same_person(None, "alice") and not same_person("", "") and not same_person(None, None)


def test_the_audit_actor_names_role_person_and_key() -> None:
    assert actor_label("finance", "alice", 7) == "finance:alice#7"
    assert actor_label("finance", "alice", None) == "finance:alice"
