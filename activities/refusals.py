"""How a refusal leaves an activity: the one translation from the domain's `Refused` to Temporal."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from temporalio.exceptions import ApplicationError

from activities.parties.errors import PartyRejected
from domain.refusals import Refusal, Refused


def refuse(code: Refusal, detail: str) -> ApplicationError:
    """A business refusal: non-retryable, its type the refusal code, so the flow and the API can say
    exactly why (retrying cannot change a rule's answer)."""
    return ApplicationError(detail, type=code.value, non_retryable=True)


def refusal(exc: Refused) -> ApplicationError:
    """A rule's `Refused`, carried unchanged: same code, same detail."""
    return refuse(exc.code, exc.detail)


@contextmanager
def carried() -> Iterator[None]:
    """Around a rule's call: its `Refused` leaves the activity as the matching ApplicationError."""
    try:
        yield
    except Refused as exc:
        raise refusal(exc) from None


def party_failure(
    exc: Exception,
    who: str,
    rejected: Refusal = Refusal.PARTY_REJECTED,
    unavailable: Refusal = Refusal.PARTY_UNAVAILABLE,
) -> ApplicationError:
    """An outside party's answer as the activity's failure: a rejection is final (the party said no, with
    its own code as the error's details); anything else is transient and retried under the caller's policy."""
    if isinstance(exc, PartyRejected):
        return ApplicationError(f"{who} refused: {exc}", exc.code, type=rejected.value, non_retryable=True)
    return ApplicationError(f"{who} unavailable: {exc}", type=unavailable.value)
