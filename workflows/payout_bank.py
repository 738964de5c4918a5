"""What PayoutBatchWorkflow asks the bank (submit a batch, its results, whether it holds a batch at all),
kept apart from the batcher's loop in workflows/payout_batch.py; deterministic workflow code like it."""

from __future__ import annotations

from temporalio import workflow
from temporalio.exceptions import ActivityError

with workflow.unsafe.imports_passed_through():
    from activities.payouts import PayoutActivities
    from domain.withdrawals import BankBatchAnswer, BankPayoutItem, OpenBatch, PayoutTerms, nothing_was_paid
    from workflows import policies


class BankCalls:
    # Provided by PayoutBatchWorkflow.
    _terms: PayoutTerms

    async def _hand_over(self, b: OpenBatch, carried: bool) -> list[BankPayoutItem]:
        """Submit the batch, unless the bank holds it already; what the bank said about its payouts."""
        if carried:  # a previous run may have submitted it: ask first, resubmitting may be refused
            answer = await self._ask(b)
            if answer is not None and answer.known:
                return answer.items
        try:
            return await self._submit(b)
        except ActivityError as err:  # refused; but the first submit may have landed and lost its answer
            answer = await self._ask(b)
            if not nothing_was_paid(answer):
                return answer.items if answer is not None else []  # followed like any batch at the bank
            reason = f"the bank refused payout batch {b.batch_id} and holds no such batch: {err.cause or err}"
            return [BankPayoutItem(payout_no=w, status="FAILED", failure_reason=reason) for w in b.withdrawal_ids]

    async def _submit(self, b: OpenBatch) -> list[BankPayoutItem]:
        items: list[BankPayoutItem] = await workflow.execute_activity_method(
            PayoutActivities.submit,
            args=[b.batch_id, self._terms.notify_url],
            start_to_close_timeout=policies.BANK_TIMEOUT,
            retry_policy=policies.BANK_SUBMIT,
        )
        return items

    async def _query(self, b: OpenBatch) -> list[BankPayoutItem] | None:
        """What the bank says about the batch's payouts; None when it did not answer."""
        try:
            items: list[BankPayoutItem] = await workflow.execute_activity_method(
                PayoutActivities.query,
                b.batch_id,
                start_to_close_timeout=policies.BANK_TIMEOUT,
                retry_policy=policies.BANK_QUERY,
            )
            return items
        except ActivityError:
            return None

    async def _ask(self, b: OpenBatch) -> BankBatchAnswer | None:
        """The bank's answer about the batch (through its outages); None when it refused the question."""
        try:
            answer: BankBatchAnswer = await workflow.execute_activity_method(
                PayoutActivities.ask,
                b.batch_id,
                start_to_close_timeout=policies.BANK_TIMEOUT,
                retry_policy=policies.BANK_SUBMIT,
            )
            return answer
        except ActivityError:
            return None
