"""Order admission: whether an order may be placed (pure).

The API asks it before any flow starts (so a refusal is a plain 4xx and starts nothing) and the order
flow's first activity asks it again under a lock on the merchant (the answer may have changed in
between): one rule, two callers, the same refusals.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from domain.merchants import MerchantStatus
from domain.refusals import Refusal, Refused


@dataclass(frozen=True)
class MerchantFacts:
    """What admission needs to know about the merchant an order is for."""

    merchant_id: str
    status: str  # a MerchantStatus, or a status set by hand outside onboarding (e.g. suspended)
    currency: str


def admit_merchant(merchant_id: str, merchant: MerchantFacts | None, currency: str) -> None:
    """Only an ACTIVE merchant takes orders, and only in the currency it settles in."""
    if merchant is None:
        raise Refused(Refusal.MERCHANT_NOT_FOUND, f"merchant {merchant_id} does not exist")
    if merchant.status != MerchantStatus.ACTIVE:
        raise Refused(Refusal.MERCHANT_NOT_ACTIVE, f"merchant {merchant_id} is {merchant.status}, not ACTIVE")
    if merchant.currency != currency:
        raise Refused(Refusal.WRONG_CURRENCY, f"merchant {merchant_id} takes {merchant.currency}, not {currency}")


def admit_channel(channel: str | None, weights: Mapping[str, int]) -> None:
    """A channel the customer asks for must be enabled (weight above zero); none asked: routing chooses."""
    if channel is not None and weights.get(channel, 0) <= 0:
        enabled = ", ".join(c for c, w in weights.items() if w > 0)
        raise Refused(Refusal.UNKNOWN_CHANNEL, f"channel {channel!r} is not enabled (enabled: {enabled})")


def shortfall(sku_id: str, wanted: int, left: int) -> str | None:
    """Why a tracked SKU cannot cover `wanted`, or None when it can."""
    return None if left >= wanted else f"{sku_id} (wanted {wanted}, {left} left)"


def admit_stock(wanted: Mapping[str, int], tracked: Mapping[str, int]) -> None:
    """Every SKU with tracked stock covers its quantity; SKUs without a stock row are services with
    unlimited capacity."""
    short = [s for sku, left in tracked.items() if sku in wanted and (s := shortfall(sku, wanted[sku], left))]
    if short:
        raise Refused(Refusal.OUT_OF_STOCK, "not enough stock: " + "; ".join(short))


def quantities(items: Iterable[tuple[str, int]]) -> dict[str, int]:
    """Quantity wanted per SKU: an SKU on two lines needs both covered."""
    wanted: dict[str, int] = {}
    for sku_id, quantity in items:
        wanted[sku_id] = wanted.get(sku_id, 0) + quantity
    return wanted


def admit_order(
    merchant_id: str,
    merchant: MerchantFacts | None,
    currency: str,
    channel: str | None,
    weights: Mapping[str, int],
    wanted: Mapping[str, int],
    tracked: Mapping[str, int],
) -> None:
    """The whole admission of an order, in the order a caller should hear the reasons."""
    admit_merchant(merchant_id, merchant, currency)
    admit_channel(channel, weights)
    admit_stock(wanted, tracked)
