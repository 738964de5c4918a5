"""Settlement statement rules: what finance may adjust, and which statements approve themselves (pure)."""

from __future__ import annotations

from domain.refusals import Refusal, Refused


def check_adjustment(commission_minor: int, net_minor: int, adjustment_minor: int) -> None:
    """An adjustment moves money between the platform's commission and the merchant's net (positive: to
    the merchant); it may not drive either below zero."""
    if commission_minor - adjustment_minor < 0 or net_minor + adjustment_minor < 0:
        raise Refused(
            Refusal.ADJUSTMENT_TOO_LARGE,
            f"an adjustment of {adjustment_minor} would make the commission or the net negative",
        )


def auto_approvable(net_minor: int, max_net_minor: int) -> bool:
    """Statements paying a merchant at most the threshold approve themselves ("auto"); the rest wait for
    finance."""
    return net_minor <= max_net_minor
