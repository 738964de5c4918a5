"""Text PostgreSQL cannot store is found wherever it sits in a request, and named by its place."""

from domain.text import find_unstorable, find_unstorable_pairs, why_unstorable


def test_plain_text_and_valid_pairs_are_storable():
    assert why_unstorable("商户 m-1 😀") is None
    assert find_unstorable({"a": [1, "x", {"b": None}]}, "body") is None


def test_a_nul_or_a_lone_surrogate_is_named_by_its_place():
    assert find_unstorable({"items": [{"name": "a\x00b"}]}, "body") == (
        "body.items[0].name contains a NUL character (\\u0000)"
    )
    found = find_unstorable({"reason": "\ud800"}, "body")
    assert found is not None and found.startswith("body.reason contains a lone UTF-16 surrogate")


def test_a_key_and_a_query_pair_are_checked_too():
    found = find_unstorable({"ok\x00": 1}, "body")
    assert found is not None and found.startswith("body (a key) contains a NUL")
    assert find_unstorable_pairs([("status", "PAID"), ("merchant_id", "m\x00")], "query") == (
        "query.merchant_id contains a NUL character (\\u0000)"
    )
