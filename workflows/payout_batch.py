"""PayoutBatchWorkflow (`payout-batcher`): carries queued withdrawals to the bank in batches.

One long-lived flow, started idempotently by the API (with every withdrawal request) and by `ops dev`.
Every `batch_seconds`, or as soon as `max_items` withdrawals wait (each queued withdrawal signals it),
it claims the oldest queued withdrawals into a new batch and follows that batch on its own coroutine:
submit (the bank deduplicates on batch and payout numbers, so a retry after a worker crash pays nobody
twice), then results by callback or by polling, each signalled to its withdrawal flow, which posts the
ledger. Payouts still unanswered after `unknown_escalate_seconds` are reported UNKNOWN. Batches still
being followed are carried over continue-as-new and picked up again (submit and reports are repeats).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from datetime import timedelta

from temporalio import workflow
from temporalio.common import RetryPolicy
from temporalio.exceptions import ActivityError, FailureError

with workflow.unsafe.imports_passed_through():
    from activities.withdrawals import PayoutActivities
    from domain.withdrawals import (
        BankNotification,
        BankPayoutItem,
        BatchClosing,
        BatcherInput,
        ClaimRequest,
        OpenBatch,
        PayoutOutcome,
    )
    from workflows import policies, stages

# Handing a batch to the bank must eventually happen, however long it is down; the numbers make repeats safe.
BANK_SUBMIT = RetryPolicy(
    initial_interval=timedelta(seconds=1),
    backoff_coefficient=2.0,
    maximum_interval=timedelta(minutes=5),
    non_retryable_error_types=["PARTY_REJECTED"],
)
BANK_QUERY = RetryPolicy(initial_interval=timedelta(milliseconds=300), maximum_attempts=2)
# Short: a call lost with a crashed worker is retried after this (the HTTP client gives up after 10 s).
BANK_TIMEOUT = timedelta(seconds=12)
MAX_POLL_SECONDS = 600.0
# Ticks per run before continuing as new: keeps the history short for a flow that never ends.
TICKS_PER_RUN = 500


@workflow.defn(name="PayoutBatchWorkflow")
class PayoutBatchWorkflow:
    def __init__(self) -> None:
        self._queued_hint = 0
        self._inbox: dict[str, list[BankNotification]] = {}
        self._open: dict[str, OpenBatch] = {}
        self._followers: list[asyncio.Task[None]] = []

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
        self._inbox.setdefault(n.batch_no, []).append(n)

    @workflow.run
    async def run(self, inp: BatcherInput) -> None:
        self._terms = t = inp.terms
        stages.identify("payout")
        for b in inp.open_batches:
            self._start_following(b)
        batches = inp.batches_so_far
        for _ in range(TICKS_PER_RUN):
            stages.enter(
                "COLLECTING",
                f"{batches} batches so far, {len(self._open)} at the bank ({', '.join(self._open) or 'none'}); next "
                f"batch within {t.batch_seconds}s or as soon as {t.max_items} withdrawals wait",
            )
            await self._wait(lambda: self._queued_hint >= t.max_items, t.batch_seconds)
            now = workflow.now()
            claimed = await workflow.execute_activity_method(
                PayoutActivities.claim,
                ClaimRequest(batch_id=f"PB{now:%Y%m%d%H%M%S}{workflow.uuid4().hex[:8].upper()}", max_items=t.max_items),
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
        workflow.continue_as_new(BatcherInput(terms=t, open_batches=list(self._open.values()), batches_so_far=batches))

    def _start_following(self, b: OpenBatch) -> None:
        self._open[b.batch_id] = b
        self._followers.append(asyncio.create_task(self._follow(b)))

    async def _follow(self, b: OpenBatch) -> None:
        t = self._terms
        pending = set(b.withdrawal_ids)
        counts = {"PAID": 0, "FAILED": 0}
        try:
            items = await workflow.execute_activity_method(
                PayoutActivities.submit,
                args=[b.batch_id, t.notify_url],
                start_to_close_timeout=BANK_TIMEOUT,
                retry_policy=BANK_SUBMIT,
            )
        except ActivityError as err:  # a definite refusal: nothing was paid, the money goes back
            reason = f"the bank refused payout batch {b.batch_id}: {err.cause or err}"
            items = [BankPayoutItem(payout_no=w, status="FAILED", failure_reason=reason) for w in b.withdrawal_ids]
        for wid in sorted(pending):
            await self._tell(PayoutOutcome(withdrawal_id=wid, status="SUBMITTED", batch_id=b.batch_id))
        await self._report(b, items, pending, counts)
        deadline = b.opened_at + timedelta(seconds=t.unknown_escalate_seconds)
        delay = 1.0
        while pending and workflow.now() < deadline:
            remaining = (deadline - workflow.now()).total_seconds()
            if await self._wait(lambda: bool(self._inbox.get(b.batch_id)), min(delay, remaining)):
                items = self._arrived(b)
            else:
                delay = min(delay * 2, MAX_POLL_SECONDS)
                try:
                    items = await workflow.execute_activity_method(
                        PayoutActivities.query,
                        b.batch_id,
                        start_to_close_timeout=BANK_TIMEOUT,
                        retry_policy=BANK_QUERY,
                    )
                except ActivityError:
                    continue  # the next poll or the callback will tell
            await self._report(b, items, pending, counts)
        if pending:  # before holding anything as UNKNOWN: what arrived meanwhile, and one last question
            await self._report(b, self._arrived(b), pending, counts)
        if pending:
            try:
                items = await workflow.execute_activity_method(
                    PayoutActivities.query, b.batch_id, start_to_close_timeout=BANK_TIMEOUT, retry_policy=BANK_QUERY
                )
                await self._report(b, items, pending, counts)
            except ActivityError:
                pass  # no answer is what UNKNOWN means
        for wid in sorted(pending):
            await self._tell(PayoutOutcome(withdrawal_id=wid, status="UNKNOWN", batch_id=b.batch_id))
        await workflow.execute_activity_method(
            PayoutActivities.close,
            BatchClosing(batch_id=b.batch_id, paid=counts["PAID"], failed=counts["FAILED"], unknown=len(pending)),
            start_to_close_timeout=policies.DB_TIMEOUT,
            retry_policy=policies.DB,
        )
        self._open.pop(b.batch_id, None)
        self._inbox.pop(b.batch_id, None)

    def _arrived(self, b: OpenBatch) -> list[BankPayoutItem]:
        return [
            BankPayoutItem(payout_no=n.payout_no, status=n.status, failure_reason=n.failure_reason, bank_ref=n.bank_ref)
            for n in self._inbox.pop(b.batch_id, [])
        ]

    async def _report(
        self, b: OpenBatch, items: list[BankPayoutItem], pending: set[str], counts: dict[str, int]
    ) -> None:
        for item in items:
            if item.payout_no in pending and item.status in ("PAID", "FAILED"):
                pending.discard(item.payout_no)
                counts[item.status] += 1
                await self._tell(
                    PayoutOutcome(
                        withdrawal_id=item.payout_no,
                        status="PAID" if item.status == "PAID" else "FAILED",
                        batch_id=b.batch_id,
                        bank_ref=item.bank_ref,
                        reason=item.failure_reason,
                    )
                )

    async def _tell(self, outcome: PayoutOutcome) -> None:
        try:
            await workflow.get_external_workflow_handle(f"withdrawal-{outcome.withdrawal_id}").signal("payout", outcome)
        except FailureError as exc:  # the withdrawal already finished (a repeat after continue-as-new)
            workflow.logger.info("could not tell withdrawal %s: %s", outcome.withdrawal_id, exc)

    async def _wait(self, condition: Callable[[], bool], seconds: float) -> bool:
        try:
            await workflow.wait_condition(condition, timeout=timedelta(seconds=max(seconds, 0.001)))
            return True
        except TimeoutError:
            return False
