"""PayoutBatchWorkflow on its own: a batch closes when max_items withdrawals wait or when batch_seconds
pass, the bank's PAID / FAILED by answer, callback or poll, UNKNOWN after the escalation time, a late
result compared once the withdrawal has finished, and continue-as-new carrying the batch still at the
bank (asked about, not submitted again). The withdrawal flows it signals are Listeners."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import pytest
from temporalio import activity
from temporalio.client import Client, WorkflowHandle
from temporalio.exceptions import ApplicationError

from domain.refusals import Refusal
from domain.withdrawals import (
    BankBatchAnswer,
    BankPayoutItem,
    BatchClosing,
    BatcherInput,
    ClaimedBatch,
    ClaimRequest,
    LateVerdict,
    OpenBatch,
    PayoutOutcome,
    PayoutTerms,
)
from tests.workflows.conftest import Calls, Flow, at_stage, eventually, heard
from workflows import payout_batch
from workflows.payout_batch import PayoutBatchWorkflow


@dataclass
class Bank(Calls):
    """The queued withdrawals (the database) and the bank, as the doubles tell it. Statuses default to
    PROCESSING: what the bank answers at submit, and to a poll."""

    queued: list[str] = field(default_factory=list)
    at_submit: dict[str, str] = field(default_factory=dict)
    by_poll: dict[str, str] = field(default_factory=dict)
    batches: dict[str, list[str]] = field(default_factory=dict)
    submit_refused: bool = False  # the bank refuses the submit...
    landed: bool = False  # ...though it had taken the batch (the first answer was lost)
    held: set[str] = field(default_factory=set)  # the batches the bank holds

    def doubles(self) -> list[Any]:
        @activity.defn(name="payouts.claim")
        async def claim(req: ClaimRequest) -> ClaimedBatch:
            self.add("payouts.claim", req)
            taken, self.queued = self.queued[: req.max_items], self.queued[req.max_items :]
            if taken:
                self.batches[req.batch_id] = taken
            return ClaimedBatch(batch_id=req.batch_id, withdrawal_ids=taken, waiting=len(self.queued))

        @activity.defn(name="payouts.submit")
        async def submit(batch_id: str, notify_url: str) -> list[BankPayoutItem]:
            self.add("payouts.submit", batch_id)
            if self.landed or not self.submit_refused:
                self.held.add(batch_id)
            if self.submit_refused:
                raise ApplicationError("duplicate batch", type=Refusal.PARTY_REJECTED.value, non_retryable=True)
            return self._items(batch_id, self.at_submit)

        @activity.defn(name="payouts.query")
        async def query(batch_id: str) -> list[BankPayoutItem]:
            self.add("payouts.query", batch_id)
            return self._items(batch_id, self.by_poll)

        @activity.defn(name="payouts.ask")
        async def ask(batch_id: str) -> BankBatchAnswer:
            self.add("payouts.ask", batch_id)
            known = batch_id in self.held
            return BankBatchAnswer(known=known, items=self._items(batch_id, self.by_poll) if known else [])

        @activity.defn(name="payouts.open_batches")
        async def open_batches() -> list[OpenBatch]:
            self.add("payouts.open_batches", None)
            return []

        @activity.defn(name="payouts.still_open")
        async def still_open(batch_id: str) -> list[str]:
            self.add("payouts.still_open", batch_id)
            return self.batches.get(batch_id, [])

        @activity.defn(name="payouts.close")
        async def close(c: BatchClosing) -> None:
            self.add("payouts.close", c)

        @activity.defn(name="withdrawals.compare_late_result")
        async def compare_late_result(o: PayoutOutcome) -> LateVerdict:
            self.add("withdrawals.compare_late_result", o)
            return "AGREES"

        return [claim, submit, query, ask, open_batches, still_open, close, compare_late_result]

    def _items(self, batch_id: str, statuses: dict[str, str]) -> list[BankPayoutItem]:
        return [
            BankPayoutItem(
                payout_no=w, status=statuses.get(w, "PROCESSING"), bank_ref=f"REF-{w}", failure_reason="closed"
            )
            for w in self.batches.get(batch_id, [])
        ]

    def batch_of(self, withdrawal_id: str) -> str:
        return next(b for b, ws in self.batches.items() if withdrawal_id in ws)


async def start(
    flow: Flow, bank: Bank, *, batch_seconds: int = 60, max_items: int = 10, escalate: int = 60
) -> tuple[WorkflowHandle[Any, None], dict[str, WorkflowHandle[Any, None]]]:
    """The batcher, and a Listener standing in for each queued withdrawal's flow."""
    withdrawals = {w: await flow.listener(f"withdrawal-{w}") for w in bank.queued}
    terms = PayoutTerms(
        batch_seconds=batch_seconds, max_items=max_items, unknown_escalate_seconds=escalate, notify_url="http://cb"
    )
    handle = await flow.client.start_workflow(
        PayoutBatchWorkflow.run, BatcherInput(terms=terms), id=flow.workflow_id("payout-batcher"), task_queue=flow.queue
    )
    await eventually(lambda: at_stage(handle, "COLLECTING"))
    return handle, withdrawals


async def told(withdrawal: WorkflowHandle[Any, None]) -> list[str]:
    """The payout statuses the batcher signalled to a withdrawal flow, in order."""
    return [o["status"] for o in await heard(withdrawal, "payout")]


async def bank_says(handle: WorkflowHandle[Any, Any], batch_id: str, withdrawal_id: str, status: str) -> None:
    """The bank's signed callback for one payout, as the API signals it to the batcher."""
    await handle.signal(
        PayoutBatchWorkflow.notification,
        {
            "event_id": f"e-{withdrawal_id}-{status}",
            "event_type": "payout.result",
            "batch_no": batch_id,
            "payout_no": withdrawal_id,
            "status": status,
            "bank_ref": f"REF-{withdrawal_id}",
        },
    )


def ids(flow: Flow, n: int) -> list[str]:
    return [flow.workflow_id("w") for _ in range(n)]


async def test_a_batch_closes_as_soon_as_max_items_withdrawals_wait(temporal: Client) -> None:
    bank = Bank()
    flow = Flow(temporal, PayoutBatchWorkflow, bank.doubles())
    bank.queued = ids(flow, 3)
    bank.at_submit = dict.fromkeys(bank.queued, "PAID")
    first, second, third = bank.queued
    async with flow.worker:
        handle, withdrawals = await start(flow, bank, max_items=2)
        for _ in range(2):
            await handle.signal(PayoutBatchWorkflow.queued)
        await eventually(lambda: bank.asked("payouts.close"))  # long before batch_seconds (60 s)
        assert await told(withdrawals[first]) == ["SUBMITTED", "PAID"]
        assert await told(withdrawals[second]) == ["SUBMITTED", "PAID"]
        assert await told(withdrawals[third]) == []  # one withdrawal is not max_items: it waits
        # A result for a batch no longer followed, of a withdrawal whose flow has finished: compared.
        await bank_says(handle, "PB-EARLIER", "w-finished", "FAILED")
        await eventually(lambda: bank.asked("withdrawals.compare_late_result"))
        await handle.terminate()
    assert [r.max_items for r in bank.of("payouts.claim")] == [2]
    assert bank.batches == {bank.of("payouts.claim")[0].batch_id: [first, second]}
    [closing] = bank.of("payouts.close")
    assert (closing.paid, closing.failed, closing.unknown) == (2, 0, 0)
    [late] = bank.of("withdrawals.compare_late_result")
    assert (late.withdrawal_id, late.status, late.batch_id) == ("w-finished", "FAILED", "PB-EARLIER")


async def test_a_batch_closes_after_batch_seconds_and_its_payouts_end_paid_failed_or_unknown(temporal: Client) -> None:
    bank = Bank()
    flow = Flow(temporal, PayoutBatchWorkflow, bank.doubles())
    bank.queued = ids(flow, 4)
    paid, failed_by_poll, failed_by_callback, unknown = bank.queued
    bank.at_submit = {paid: "PAID"}
    bank.by_poll = {failed_by_poll: "FAILED"}
    async with flow.worker:
        handle, withdrawals = await start(flow, bank, batch_seconds=1, escalate=3)  # no `queued` signal
        await eventually(lambda: bank.asked("payouts.submit"))
        batch_id = bank.batch_of(paid)
        await bank_says(handle, batch_id, failed_by_callback, "FAILED")
        await eventually(lambda: bank.asked("payouts.close"), within=15)
        assert await told(withdrawals[paid]) == ["SUBMITTED", "PAID"]
        assert await told(withdrawals[failed_by_poll]) == ["SUBMITTED", "FAILED"]
        assert await told(withdrawals[failed_by_callback]) == ["SUBMITTED", "FAILED"]
        assert await told(withdrawals[unknown]) == ["SUBMITTED", "UNKNOWN"]
        # Finance resolved the unknown payout (its flow finished); then the bank answers after all.
        await withdrawals[unknown].terminate()
        await bank_says(handle, batch_id, unknown, "PAID")
        await eventually(lambda: bank.asked("withdrawals.compare_late_result"))
        await handle.terminate()
    assert bank.batches == {batch_id: [paid, failed_by_poll, failed_by_callback, unknown]}
    assert bank.of("payouts.submit") == [batch_id]
    [closing] = bank.of("payouts.close")
    assert (closing.paid, closing.failed, closing.unknown) == (1, 2, 1)
    [late] = bank.of("withdrawals.compare_late_result")
    assert (late.withdrawal_id, late.status, late.batch_id, late.bank_ref) == (
        unknown,
        "PAID",
        batch_id,
        f"REF-{unknown}",
    )


async def test_continue_as_new_carries_the_batch_at_the_bank_and_asks_before_submitting_again(
    temporal: Client, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(payout_batch, "TICKS_PER_RUN", 2)  # a new run every two ticks (outside the sandbox)
    bank = Bank()
    flow = Flow(temporal, PayoutBatchWorkflow, bank.doubles(), sandboxed=False)
    bank.queued = ids(flow, 1)
    [pending] = bank.queued
    async with flow.worker:
        handle, withdrawals = await start(flow, bank, batch_seconds=1)
        first_run = (await handle.describe()).run_id
        await eventually(lambda: bank.asked("payouts.submit"))
        batch_id = bank.batch_of(pending)
        await eventually(lambda: bank.asked("payouts.ask"), within=15)  # the next run asks the bank
        assert (await handle.describe()).run_id != first_run
        await bank_says(handle, batch_id, pending, "PAID")
        await eventually(lambda: bank.asked("payouts.close"))
        statuses = await told(withdrawals[pending])  # each run tells the batch's pending ones it is submitted
        assert statuses[-1] == "PAID" and set(statuses) == {"SUBMITTED", "PAID"} and statuses.count("PAID") == 1
        await handle.terminate()
    assert bank.of("payouts.submit") == [batch_id]  # the bank holds it: not submitted again
    assert set(bank.of("payouts.ask")) == {batch_id}
    [closing] = bank.of("payouts.close")
    assert (closing.batch_id, closing.paid, closing.unknown) == (batch_id, 1, 0)


@pytest.mark.parametrize(("landed", "told_then"), [(False, "FAILED"), (True, "PAID")])
async def test_a_refused_submit_fails_the_payouts_only_when_the_bank_holds_no_such_batch(
    temporal: Client, landed: bool, told_then: str
) -> None:
    bank = Bank(submit_refused=True, landed=landed)
    flow = Flow(temporal, PayoutBatchWorkflow, bank.doubles())
    bank.queued = ids(flow, 1)
    [withdrawal] = bank.queued
    bank.by_poll = {withdrawal: "PAID"}  # what the bank says of a batch it holds
    async with flow.worker:
        handle, withdrawals = await start(flow, bank, batch_seconds=1)
        await eventually(lambda: bank.asked("payouts.close"))
        assert await told(withdrawals[withdrawal]) == ["SUBMITTED", told_then]
        await handle.terminate()
    batch_id = bank.batch_of(withdrawal)
    assert bank.of("payouts.submit") == [batch_id] and bank.of("payouts.ask") == [batch_id]
    [closing] = bank.of("payouts.close")
    assert (closing.paid, closing.failed) == ((1, 0) if landed else (0, 1))
