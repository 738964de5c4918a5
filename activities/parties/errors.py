"""How an outside party's answer is classified for the caller: retry it, or act on the refusal.

``PartyUnavailable`` means "we don't know / try again" (5xx, 429, timeouts, connection errors):
activities let Temporal retry it with backoff. ``PartyRejected`` is a definite business answer
(4xx with a code) that a retry would only repeat, so activities turn it into a non-retryable error.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from activities.parties.payment_channel import ChannelOrder


class PartyError(Exception):
    """Base of every failure talking to an outside party."""


class PartyUnavailable(PartyError):
    def __init__(self, message: str, *, status: int | None = None, code: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.status = status
        self.code = code

    def __reduce__(self) -> tuple[object, ...]:
        return (_rebuild_unavailable, (self.message, self.status, self.code))


class PartyRejected(PartyError):
    def __init__(self, code: str, message: str, *, status: int | None = None) -> None:
        super().__init__(f"{code}: {message}")
        self.code = code
        self.message = message
        self.status = status

    def __reduce__(self) -> tuple[object, ...]:
        return (PartyRejected, (self.code, self.message), {"status": self.status})


class OrderAlreadyPaid(PartyRejected):
    """Close refused because the customer paid first: the caller must record the payment, not close."""

    def __init__(self, order: ChannelOrder, message: str = "the order is already paid") -> None:
        super().__init__("ORDER_PAID", message, status=409)
        self.order = order

    def __reduce__(self) -> tuple[object, ...]:
        return (OrderAlreadyPaid, (self.order, self.message))


def _rebuild_unavailable(message: str, status: int | None, code: str | None) -> PartyUnavailable:
    return PartyUnavailable(message, status=status, code=code)
