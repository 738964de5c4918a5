"""Waiting for an outside party: its callback lands in the flow's inbox, meanwhile the party is polled.

Every flow that hands work to a party (payment and refund at a channel, payouts at the bank, KYC checks
and the e-contract) waits the same way: sleep until a callback arrives or the next poll is due, poll on a
back-off, stop at a deadline. The flow keeps its inbox and decides what a callback or an answer means;
this one loop decides when to look. Deterministic: only workflow timers and conditions.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from enum import Enum

from temporalio import workflow

with workflow.unsafe.imports_passed_through():
    from workflows.calls import wait_until


class Woke(Enum):
    HEARD = "heard"  # `heard()` turned true: a callback (or another reason to look) is in the inbox
    POLL = "poll"  # the wait ran out: ask the party now (already counted in `polls`)
    OVER = "over"  # the deadline passed


class PartyWait:
    """One wait for a party: `heard` says a callback is in, `delay(polls)` is the back-off before the next
    poll. With a `deadline`, waits never run past it and `next()` answers OVER once it passed, before
    waiting; `ask_at_deadline=False` also answers OVER (not POLL) when a wait ran out at the deadline.
    `window=True` makes the deadline a poll window instead: waits are capped by it (never below `floor`
    seconds) while it lasts, and past it the flow goes on polling; nothing ends, unless
    `ask_at_deadline=False`: then a passed deadline ends the next wait at once with OVER, and the flow
    may set the next `deadline` (a reminder every so often while it polls)."""

    def __init__(
        self,
        heard: Callable[[], bool],
        delay: Callable[[int], float],
        *,
        deadline: datetime | None = None,
        ask_at_deadline: bool = True,
        window: bool = False,
        floor: float = 0.0,
    ) -> None:
        self.heard = heard
        self.delay = delay
        self.deadline = deadline
        self.ask_at_deadline = ask_at_deadline
        self.window = window
        self.floor = floor
        self.polls = 0

    def left(self) -> float | None:
        """Seconds until the deadline (negative once passed); None without one."""
        return None if self.deadline is None else (self.deadline - workflow.now()).total_seconds()

    def over(self) -> bool:
        left = self.left()
        return left is not None and left <= 0

    async def next(self) -> Woke:
        if self.over() and not self.window:
            return Woke.OVER
        wait = float(self.delay(self.polls))
        left = self.left()
        if left is not None and (left > 0 or not self.ask_at_deadline):
            # A deadline not yet answered with OVER ends the wait at once.
            wait = min(wait, max(left, self.floor))
        if await wait_until(self.heard, max(wait, 0.001)):
            return Woke.HEARD
        if not self.ask_at_deadline and self.over():
            return Woke.OVER
        self.polls += 1
        return Woke.POLL
