"""Small helpers every flow uses the same way (deterministic: only workflow APIs)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import timedelta
from typing import Any, TypeVar

from temporalio import workflow
from temporalio.exceptions import ApplicationError

with workflow.unsafe.imports_passed_through():
    from workflows import policies

T = TypeVar("T")


def refused(message: str, type_: str) -> ApplicationError:
    """A business refusal: the caller gets `type_` and `message`; retrying cannot change it."""
    return ApplicationError(message, type=type_, non_retryable=True)


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
