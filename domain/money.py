"""Money is integer minor units plus an ISO currency; rates are integer basis points."""

from __future__ import annotations

BPS = 10_000
CURRENCIES = frozenset({"CNY", "USD", "EUR", "HKD"})


def apply_bps(amount_minor: int, rate_bps: int) -> int:
    """amount × rate, rounded half-up to the minor unit (exact integer arithmetic, no floats)."""
    if amount_minor < 0 or rate_bps < 0:
        raise ValueError("amount and rate must be non-negative")
    return (amount_minor * rate_bps * 2 + BPS) // (2 * BPS)


def split_exact(total_minor: int, weights: list[int]) -> list[int]:
    """Split total by weights so the parts always add up to total exactly.

    Each part is rounded down and the leftover minor units go to the largest remainders first,
    ties to the earlier part: deterministic, and no cent is created or lost.
    """
    if total_minor < 0 or any(w < 0 for w in weights) or not weights:
        raise ValueError("total and weights must be non-negative, weights non-empty")
    wsum = sum(weights)
    if wsum == 0:
        raise ValueError("weights must not all be zero")
    parts = [total_minor * w // wsum for w in weights]
    remainders = [total_minor * w % wsum for w in weights]
    leftover = total_minor - sum(parts)
    for i in sorted(range(len(weights)), key=lambda i: (-remainders[i], i))[:leftover]:
        parts[i] += 1
    return parts
