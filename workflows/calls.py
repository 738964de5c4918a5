"""Small helpers every flow uses the same way (deterministic: only workflow APIs)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import timedelta
from typing import Any, TypeVar

from temporalio import workflow
from temporalio.exceptions import ActivityError, ApplicationError

with workflow.unsafe.imports_passed_through():
    from activities.refusals import refuse
    from domain.refusals import Refusal
    from workflows import policies

T = TypeVar("T")


def refused(code: Refusal, detail: str) -> ApplicationError:
    """A business refusal by the flow itself: the same shape an activity's refusal has."""
    return refuse(code, detail)


def passed_on(err: ActivityError) -> ApplicationError:
    """An activity's refusal, passed on unchanged (code and detail) as the flow's own answer."""
    cause = err.cause if isinstance(err.cause, ApplicationError) else None
    if cause is None:
        return refuse(Refusal.REFUSED, str(err))
    return ApplicationError(cause.message, type=cause.type or Refusal.REFUSED.value, non_retryable=True)


async def wait_until(condition: Callable[[], bool], seconds: float) -> bool:
    """Wait for `condition` at most `seconds`; False when the time ran out first."""
    try:
        await workflow.wait_condition(condition, timeout=timedelta(seconds=seconds))
        return True
    except TimeoutError:
        return False


async def db_step(activity: Callable[..., Awaitable[T]], arg: Any) -> T:
    """Run a one-transaction database activity with the database timeouts and retries."""
    result: T = await workflow.execute_activity_method(
        activity, arg, start_to_close_timeout=policies.DB_TIMEOUT, retry_policy=policies.DB
    )
    return result


async def party_step(activity: Callable[..., Awaitable[T]], arg: Any) -> T:
    """Ask an outside party (KYC, e-sign) through outages: its request number makes a repeat safe."""
    result: T = await workflow.execute_activity_method(
        activity, arg, start_to_close_timeout=policies.CHANNEL_TIMEOUT, retry_policy=policies.PARTY
    )
    return result
