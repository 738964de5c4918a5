"""Text PostgreSQL cannot store: a NUL character (text and jsonb refuse it) or a lone UTF-16 surrogate
(not encodable as UTF-8). Such a value anywhere in a request is refused up front with the place it was
found, instead of failing deep inside a write as a 500 (pure)."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

_SURROGATES = range(0xD800, 0xE000)


def why_unstorable(text: str) -> str | None:
    """The reason `text` cannot be stored, or None when it can."""
    if "\x00" in text:
        return "contains a NUL character (\\u0000)"
    if any(ord(ch) in _SURROGATES for ch in text):
        return "contains a lone UTF-16 surrogate (not valid Unicode text)"
    return None


def find_unstorable(value: Any, where: str) -> str | None:
    """The first place (`where.key[0]...`) in a decoded JSON value holding unstorable text, with why."""
    if isinstance(value, str):
        why = why_unstorable(value)
        return f"{where} {why}" if why else None
    if isinstance(value, dict):
        for key, item in value.items():
            found = find_unstorable(key, f"{where} (a key)") or find_unstorable(item, f"{where}.{key}")
            if found:
                return found
    elif isinstance(value, list):
        for i, item in enumerate(value):
            found = find_unstorable(item, f"{where}[{i}]")
            if found:
                return found
    return None


def find_unstorable_pairs(pairs: Iterable[tuple[str, str]], where: str) -> str | None:
    """The same for name-value pairs (a query string, path parameters)."""
    for name, text in pairs:
        found = find_unstorable(name, f"{where} (a name)") or find_unstorable(text, f"{where}.{name}")
        if found:
            return found
    return None
