"""Small helpers every flow uses the same way (deterministic: only workflow APIs)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import timedelta
from typing import Any, TypeVar

from temporalio import workflow
from temporalio.exceptions import ActivityError, ApplicationError
from temporalio.exceptions import TimeoutError as StepTimedOut

with workflow.unsafe.imports_passed_through():
    from activities.refusals import refuse
    from domain.refusals import Refusal
    from workflows import policies

T = TypeVar("T")

# What a failed step raises in the flow: ActivityError for an activity task; a local activity's failure
# comes as the activity's own error (ApplicationError), or as a timeout.
STEP_FAILED = (ActivityError, ApplicationError, StepTimedOut)


def refused(code: Refusal, detail: str) -> ApplicationError:
    """A business refusal by the flow itself: the same shape an activity's refusal has."""
    return refuse(code, detail)


def passed_on(err: ActivityError | ApplicationError | StepTimedOut) -> ApplicationError:
    """An activity's refusal, passed on unchanged (code and detail) as the flow's own answer."""
    cause = err if isinstance(err, ApplicationError) else err.cause if isinstance(err.cause, ApplicationError) else None
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


async def db_step(activity: Callable[..., Awaitable[T]], arg: Any, *, local: bool = False) -> T:
    """Run a one-transaction database activity with the database timeouts and retries.

    `local`: run it in the worker that runs the flow, inside the flow's task (a local activity), as
    the short writes of a flow's own steps are: no activity task and no extra workflow task per write,
    and the write is still recorded (a marker) and retried like any activity."""
    if local:
        done: T = await workflow.execute_local_activity_method(
            activity, arg, start_to_close_timeout=policies.DB_TIMEOUT, retry_policy=policies.DB
        )
        return done
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
