"""PayoutBatchWorkflow (`payout-batcher`): carries queued withdrawals to the bank in batches.

One long-lived flow, started idempotently by the API (with every withdrawal request) and by `ops dev`.
Every `batch_seconds`, or as soon as `max_items` withdrawals wait (each queued withdrawal signals it),
it claims the oldest queued withdrawals into a new batch and follows that batch on its own coroutine:
submit (the bank deduplicates on batch and payout numbers, so a retry after a worker crash pays nobody
twice), then results by callback or by polling, each signalled to its withdrawal flow, which posts the
ledger. Payouts unanswered after `unknown_escalate_seconds` are reported UNKNOWN and followed on, slowly,
until the bank answers or finance resolves them. Unknown is not failed: a refused submit (the first may
have landed and lost its answer) is followed by asking the bank for the batch; only its "no such batch"
fails the payouts. Each run rebuilds the batches at the bank from the database (with those carried over
continue-as-new, which bounds the history) and asks the bank about each before submitting it again.
"""

from __future__ import annotations

import asyncio
from datetime import timedelta

from temporalio import workflow
from temporalio.exceptions import ActivityError, FailureError

with workflow.unsafe.imports_passed_through():
    from activities.payouts import PayoutActivities
    from activities.withdrawals import WithdrawalActivities
    from domain.numbers import payout_batch_no
    from domain.payments import poll_delay
    from domain.withdrawals import (
        BankNotification,
        BankPayoutItem,
        BatchClosing,
        BatcherInput,
        ClaimRequest,
        OpenBatch,
        PayoutOutcome,
        batch_is_full,
        batch_period,
        batches_to_follow,
    )
    from workflows import policies, stages
    from workflows.awaiting import PartyWait, Woke
    from workflows.calls import wait_until
    from workflows.ids import withdrawal_workflow_id
    from workflows.payout_bank import BankCalls
    from workflows.withdrawal import WithdrawalWorkflow

MAX_POLL_SECONDS = 600
# Ticks per run before continuing as new: keeps the history short for a flow that never ends.
TICKS_PER_RUN = 500
# Runs that started before it hold refused batches as FAILED and stop following at UNKNOWN (replay).
ASK_THE_BANK = "payouts-ask-the-bank"


@workflow.defn(name="PayoutBatchWorkflow")
class PayoutBatchWorkflow(BankCalls):
    def __init__(self) -> None:
        self._queued_hint = 0
        self._inbox: dict[str, list[BankNotification]] = {}
        self._open: dict[str, OpenBatch] = {}
        self._followers: list[asyncio.Task[None]] = []
        self._v2 = False
        self._late: list[BankNotification] = []  # results for batches no longer followed

    @workflow.signal(name="queued")
    def queued(self) -> None:
        self._queued_hint += 1

    @workflow.signal(name="notification")
    def notification(self, payload: dict[str, object]) -> None:
        try:
            n = BankNotification.model_validate(payload)
        except ValueError:
            workflow.logger.warning("ignoring a notification that is not a payout result: %s", payload)
            return
        if self._v2 and n.batch_no not in self._open:
            self._late.append(n)
            return
        self._inbox.setdefault(n.batch_no, []).append(n)

    @workflow.run
    async def run(self, inp: BatcherInput) -> None:
        self._terms = t = inp.terms
        stages.identify("payout")
        self._v2 = workflow.patched(ASK_THE_BANK)
        if self._v2:
            await self._rebuild(inp)
        else:
            for b in inp.open_batches:
                self._start_following(b)
        batches = inp.batches_so_far
        for _ in range(TICKS_PER_RUN):
            stages.enter(
                "COLLECTING",
                f"{batches} batches so far, {len(self._open)} at the bank ({', '.join(self._open) or 'none'}); next "
                f"batch within {t.batch_seconds}s or as soon as {t.max_items} withdrawals wait",
            )
            await wait_until(lambda: batch_is_full(self._queued_hint, t), batch_period(t))
            now = workflow.now()
            claimed = await workflow.execute_activity_method(
                PayoutActivities.claim,
                ClaimRequest(batch_id=payout_batch_no(now, workflow.uuid4().hex), max_items=t.max_items),
                start_to_close_timeout=policies.DB_TIMEOUT,
                retry_policy=policies.DB,
            )
            self._queued_hint = claimed.waiting
            if claimed.withdrawal_ids:
                batches += 1
                self._start_following(
                    OpenBatch(batch_id=claimed.batch_id, withdrawal_ids=claimed.withdrawal_ids, opened_at=now)
                )
            if workflow.info().is_continue_as_new_suggested():
                break
        await workflow.wait_condition(workflow.all_handlers_finished)
        late = {"late_notifications": self._late} if self._v2 else {}
        workflow.continue_as_new(
            BatcherInput(terms=t, open_batches=list(self._open.values()), batches_so_far=batches, **late)
        )

    async def _rebuild(self, inp: BatcherInput) -> None:
        """Follow every batch at the bank: those carried over and those the database knows (a batcher
        restarted from scratch carries nothing); the bank is asked about each before any resubmit."""
        stored = await workflow.execute_activity_method(
            PayoutActivities.open_batches, start_to_close_timeout=policies.DB_TIMEOUT, retry_policy=policies.DB
        )
        for b in batches_to_follow(inp.open_batches, stored):
            self._start_following(b, carried=True)
        self._late = list(inp.late_notifications)
        for batch_no in [n for n in self._inbox if n not in self._open]:  # signals that came before the run
            self._late.extend(self._inbox.pop(batch_no))
        self._followers.append(asyncio.create_task(self._pass_on_late()))

    def _start_following(self, b: OpenBatch, carried: bool = False) -> None:
        self._open[b.batch_id] = b
        self._followers.append(asyncio.create_task(self._follow(b, carried)))

    async def _follow(self, b: OpenBatch, carried: bool = False) -> None:
        t = self._terms
        pending = set(b.withdrawal_ids)
        counts = {"PAID": 0, "FAILED": 0}
        if self._v2:
            items = await self._hand_over(b, carried)
        else:
            try:
                items = await self._submit(b)
            except ActivityError as err:
                reason = f"the bank refused payout batch {b.batch_id}: {err.cause or err}"
                items = [BankPayoutItem(payout_no=w, status="FAILED", failure_reason=reason) for w in b.withdrawal_ids]
        for wid in sorted(pending):
            await self._tell(PayoutOutcome(withdrawal_id=wid, status="SUBMITTED", batch_id=b.batch_id))
        await self._report(b, items, pending, counts)
        waiting = PartyWait(
            lambda: bool(self._inbox.get(b.batch_id)),
            lambda polls: poll_delay(1, MAX_POLL_SECONDS, polls),
            deadline=b.opened_at + timedelta(seconds=t.unknown_escalate_seconds),
        )
        while pending:
            woke = await waiting.next()
            if woke is Woke.OVER:
                break
            if woke is Woke.HEARD:
                items = self._arrived(b)
            else:
                if (polled := await self._query(b)) is None:
                    continue  # the next poll or the callback will tell
                items = polled
            await self._report(b, items, pending, counts)
        if pending:  # before holding anything as UNKNOWN: what arrived meanwhile, and one last question
            await self._report(b, self._arrived(b), pending, counts)
        if pending:  # no answer is what UNKNOWN means
            await self._report(b, await self._query(b) or [], pending, counts)
        for wid in sorted(pending):
            await self._tell(PayoutOutcome(withdrawal_id=wid, status="UNKNOWN", batch_id=b.batch_id))
        await workflow.execute_activity_method(
            PayoutActivities.close,
            BatchClosing(batch_id=b.batch_id, paid=counts["PAID"], failed=counts["FAILED"], unknown=len(pending)),
            start_to_close_timeout=policies.DB_TIMEOUT,
            retry_policy=policies.DB,
        )
        if self._v2:
            await self._follow_late(b, pending, counts)
        self._open.pop(b.batch_id, None)
        self._inbox.pop(b.batch_id, None)

    async def _follow_late(self, b: OpenBatch, pending: set[str], counts: dict[str, int]) -> None:
        """After UNKNOWN the money stays frozen; a result the bank gives later still settles the withdrawal.
        Slow polls, and payouts finance has resolved meanwhile are no longer asked about."""
        waiting = PartyWait(lambda: bool(self._inbox.get(b.batch_id)), lambda _: MAX_POLL_SECONDS)
        while pending:
            if await waiting.next() is Woke.HEARD:
                items = self._arrived(b)
            else:
                items = await self._query(b) or []
                still = await workflow.execute_activity_method(
                    PayoutActivities.still_open,
                    b.batch_id,
                    start_to_close_timeout=policies.DB_TIMEOUT,
                    retry_policy=policies.DB,
                )
                await self._report(b, items, pending, counts)
                pending.intersection_update(still)
                self._open[b.batch_id] = b.model_copy(update={"withdrawal_ids": sorted(pending)})
                continue
            await self._report(b, items, pending, counts)

    async def _pass_on_late(self) -> None:
        """Results for batches no longer followed (a repeat, or a payout finance resolved first): the
        withdrawal flow takes them if it still waits; otherwise they are compared with what was recorded."""
        while True:
            await workflow.wait_condition(lambda: bool(self._late))
            n = self._late[0]
            if n.batch_no in self._open:
                self._inbox.setdefault(n.batch_no, []).append(n)
            elif n.status in ("PAID", "FAILED"):
                await self._settle(_outcome(n.batch_no, _item(n)))
            self._late.pop(0)

    async def _settle(self, outcome: PayoutOutcome) -> None:
        if not await self._tell(outcome):  # the withdrawal flow has finished: compare with its outcome
            await workflow.execute_activity_method(
                WithdrawalActivities.compare_late_result,
                outcome,
                start_to_close_timeout=policies.DB_TIMEOUT,
                retry_policy=policies.DB,
            )

    def _arrived(self, b: OpenBatch) -> list[BankPayoutItem]:
        return [_item(n) for n in self._inbox.pop(b.batch_id, [])]

    async def _report(
        self, b: OpenBatch, items: list[BankPayoutItem], pending: set[str], counts: dict[str, int]
    ) -> None:
        for item in items:
            if item.payout_no in pending and item.status in ("PAID", "FAILED"):
                pending.discard(item.payout_no)
                counts[item.status] += 1
                outcome = _outcome(b.batch_id, item)
                if self._v2:
                    self._open[b.batch_id] = b.model_copy(update={"withdrawal_ids": sorted(pending)})
                    await self._settle(outcome)
                else:
                    await self._tell(outcome)

    async def _tell(self, outcome: PayoutOutcome) -> bool:
        try:
            flow: workflow.ExternalWorkflowHandle[WithdrawalWorkflow] = workflow.get_external_workflow_handle_for(
                WithdrawalWorkflow.run, withdrawal_workflow_id(outcome.withdrawal_id)
            )
            await flow.signal(WithdrawalWorkflow.payout, outcome)
            return True
        except FailureError as exc:  # the withdrawal already finished (a repeat, or finance resolved it)
            workflow.logger.info("could not tell withdrawal %s: %s", outcome.withdrawal_id, exc)
            return False


def _item(n: BankNotification) -> BankPayoutItem:
    return BankPayoutItem(payout_no=n.payout_no, status=n.status, failure_reason=n.failure_reason, bank_ref=n.bank_ref)


def _outcome(batch_id: str, item: BankPayoutItem) -> PayoutOutcome:
    """A final bank result (PAID or FAILED) as told to the withdrawal flow."""
    return PayoutOutcome(
        withdrawal_id=item.payout_no,
        status="PAID" if item.status == "PAID" else "FAILED",
        batch_id=batch_id,
        bank_ref=item.bank_ref,
        reason=item.failure_reason,
    )
