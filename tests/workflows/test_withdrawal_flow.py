"""WithdrawalWorkflow on its own: refusal at opening, finance's decision and its validator, the bank's
results as the payout batch signals them, an UNKNOWN payout resolved by two finance people, and a late
bank result compared rather than posted."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from typing import Any

from temporalio import activity
from temporalio.client import Client, WorkflowHandle

from activities.refusals import refuse
from domain.refusals import Refusal
from domain.withdrawals import (
    Decision,
    DecisionRecord,
    LateVerdict,
    PayoutOutcome,
    Resolution,
    WithdrawalInput,
    WithdrawalOpened,
    WithdrawalResult,
    WithdrawalStatus,
    WithdrawalTerms,
)
from tests.workflows.conftest import Flow, at_stage, eventually, refusal_of
from workflows.ids import withdrawal_workflow_id
from workflows.withdrawal import WithdrawalWorkflow

APPROVAL_MIN = 50_000


@dataclass
class Ledger:
    """The withdrawal's records as the doubles keep them: what each activity was asked, in order."""

    open_refusal: Refusal | None = None
    open_status: WithdrawalStatus | None = None  # what a retried open finds, when not a fresh opening
    calls: list[tuple[str, Any]] = field(default_factory=list)

    def names(self) -> list[str]:
        return [name for name, _ in self.calls]

    def outcomes(self) -> list[PayoutOutcome]:
        return [o for name, o in self.calls if name == "withdrawals.record_outcome"]

    def doubles(self) -> list[Any]:
        @activity.defn(name="withdrawals.open")
        async def open_(inp: WithdrawalInput) -> WithdrawalOpened:
            self.calls.append(("withdrawals.open", inp))
            if self.open_refusal is not None:
                raise refuse(self.open_refusal, f"refused by the test: {self.open_refusal}")
            status = WithdrawalStatus.PENDING_APPROVAL if inp.amount_minor >= APPROVAL_MIN else WithdrawalStatus.QUEUED
            status = self.open_status or status
            return WithdrawalOpened(
                withdrawal_id=inp.withdrawal_id,
                status=status,
                merchant_id=inp.merchant_id,
                amount_minor=inp.amount_minor,
            )

        @activity.defn(name="withdrawals.decide")
        async def decide(rec: DecisionRecord) -> WithdrawalStatus:
            self.calls.append(("withdrawals.decide", rec))
            return WithdrawalStatus.QUEUED if rec.decision.kind == "approve" else WithdrawalStatus.REJECTED

        @activity.defn(name="withdrawals.record_outcome")
        async def record_outcome(o: PayoutOutcome, bank: str) -> WithdrawalStatus:
            self.calls.append(("withdrawals.record_outcome", o))
            return WithdrawalStatus(o.status)

        @activity.defn(name="withdrawals.compare_late_result")
        async def compare_late_result(o: PayoutOutcome) -> LateVerdict:
            self.calls.append(("withdrawals.compare_late_result", o))
            return "AGREES"

        return [open_, decide, record_outcome, compare_late_result]


def withdrawal(withdrawal_id: str, amount_minor: int) -> WithdrawalInput:
    return WithdrawalInput(
        withdrawal_id=withdrawal_id,
        merchant_id="m-1",
        amount_minor=amount_minor,
        requested_by="merchant@m-1",
        terms=WithdrawalTerms(
            daily_limit_minor=10**9, approval_min_minor=APPROVAL_MIN, approval_remind_seconds=1, payout_bank="b"
        ),
    )


async def open_withdrawal(
    client: Client, flow: Flow, amount_minor: int
) -> tuple[WorkflowHandle[Any, WithdrawalResult], WithdrawalOpened]:
    inp = withdrawal(flow.workflow_id("WD"), amount_minor)
    workflow_id = withdrawal_workflow_id(inp.withdrawal_id)
    opened = await flow.start_and_ask(WithdrawalWorkflow.run, inp, workflow_id, WithdrawalWorkflow.opened)
    return client.get_workflow_handle_for(WithdrawalWorkflow.run, workflow_id), opened


def bank(handle: WorkflowHandle[Any, Any], status: str, **extra: Any) -> Any:
    wid = handle.id.removeprefix("withdrawal-")
    return handle.signal(WithdrawalWorkflow.payout, PayoutOutcome(withdrawal_id=wid, status=status, **extra))


async def test_a_refusal_at_opening_reaches_the_merchant_unchanged(temporal: Client) -> None:
    ledger = Ledger(open_refusal=Refusal.DAILY_LIMIT_EXCEEDED)
    flow = Flow(temporal, WithdrawalWorkflow, ledger.doubles())
    async with flow.worker:
        assert await refusal_of(open_withdrawal(temporal, flow, 1_000)) == Refusal.DAILY_LIMIT_EXCEEDED
    assert ledger.names() == ["withdrawals.open"]


async def test_a_small_withdrawal_goes_to_the_bank_and_is_paid(temporal: Client) -> None:
    ledger = Ledger()
    flow = Flow(temporal, WithdrawalWorkflow, ledger.doubles())
    async with flow.worker:
        handle, opened = await open_withdrawal(temporal, flow, 1_000)
        assert opened.status is WithdrawalStatus.QUEUED
        # Nothing to approve: finance's decision is refused by the validator.
        decision = Decision(kind="approve", by="fin-1")
        assert await refusal_of(handle.execute_update(WithdrawalWorkflow.decide, decision)) == (
            Refusal.NOT_AWAITING_APPROVAL
        )
        await bank(handle, "SUBMITTED", batch_id="B1")
        await eventually(lambda: at_stage(handle, "SUBMITTED"))
        await bank(handle, "PAID", batch_id="B1", bank_ref="REF-1")
        result = await handle.result()
    assert result.status == WithdrawalStatus.PAID
    assert [o.status for o in ledger.outcomes()] == ["PAID"]
    assert "withdrawals.decide" not in ledger.names()


async def test_a_retried_open_that_finds_the_payout_submitted_follows_the_bank_to_its_result(
    temporal: Client,
) -> None:
    """The worker died after `open` committed; the batcher submitted the payout meanwhile, so the retried
    open answers SUBMITTED. The flow must not end there: it waits for the bank's result and books it."""
    ledger = Ledger(open_status=WithdrawalStatus.SUBMITTED)
    flow = Flow(temporal, WithdrawalWorkflow, ledger.doubles())
    async with flow.worker:
        handle, opened = await open_withdrawal(temporal, flow, 1_000)
        assert opened.status is WithdrawalStatus.SUBMITTED
        await eventually(lambda: at_stage(handle, "SUBMITTED"))
        await bank(handle, "PAID", batch_id="B1", bank_ref="REF-1")
        result = await handle.result()
    assert result.status == WithdrawalStatus.PAID
    assert [o.status for o in ledger.outcomes()] == ["PAID"]


async def test_finance_decides_a_large_withdrawal_once(temporal: Client) -> None:
    ledger = Ledger()
    flow = Flow(temporal, WithdrawalWorkflow, ledger.doubles())
    async with flow.worker:
        handle, opened = await open_withdrawal(temporal, flow, APPROVAL_MIN)
        assert opened.status is WithdrawalStatus.PENDING_APPROVAL
        await eventually(lambda: at_stage(handle, "AWAITING_FINANCE_APPROVAL"))
        rejected = await handle.execute_update(
            WithdrawalWorkflow.decide, Decision(kind="reject", by="fin-1", note="no")
        )
        assert rejected.status == WithdrawalStatus.REJECTED and rejected.reason == "no"
        result = await handle.result()
    assert result.status == WithdrawalStatus.REJECTED
    assert [rec.decision.kind for n, rec in ledger.calls if n == "withdrawals.decide"] == ["reject"]
    assert ledger.outcomes() == []  # nothing went to the bank


async def test_an_unknown_payout_is_paid_only_when_a_second_finance_person_confirms(temporal: Client) -> None:
    ledger = Ledger()
    flow = Flow(temporal, WithdrawalWorkflow, ledger.doubles())
    resolve = WithdrawalWorkflow.resolve
    async with flow.worker:
        handle = await unknown_payout(temporal, flow)
        proposed = await handle.execute_update(resolve, PROPOSAL)
        assert proposed.status == WithdrawalStatus.UNKNOWN and proposed.resolution_proposed_by == "alice"
        assert [o.status for o in ledger.outcomes()] == ["UNKNOWN"]  # a proposal moves nothing
        alice_again = Resolution(outcome="PAID", by=" Alice ")
        assert await refusal_of(handle.execute_update(resolve, alice_again)) == Refusal.SAME_PERSON
        bob_other = Resolution(outcome="FAILED", by="bob")
        assert await refusal_of(handle.execute_update(resolve, bob_other)) == Refusal.RESOLUTION_CONFLICT
        confirmed = await handle.execute_update(resolve, Resolution(outcome="PAID", by="bob", reason="seen it"))
        result = await handle.result()
    assert confirmed.status == WithdrawalStatus.PAID and result.status == WithdrawalStatus.PAID
    final = ledger.outcomes()[-1]
    assert [o.status for o in ledger.outcomes()] == ["UNKNOWN", "PAID"]
    assert final.resolved_by == "bob" and final.bank_ref == "REF-9" and "proposed by alice" in (final.reason or "")
    assert "withdrawals.compare_late_result" not in ledger.names()


async def test_a_bank_result_racing_the_confirmation_is_posted_once_and_the_other_compared(temporal: Client) -> None:
    ledger = Ledger()
    flow = Flow(temporal, WithdrawalWorkflow, ledger.doubles())
    async with flow.worker:
        handle = await unknown_payout(temporal, flow)
        await handle.execute_update(WithdrawalWorkflow.resolve, PROPOSAL)
    # No worker: the bank's result and bob's confirmation usually reach the flow in the same workflow task
    # (then the confirmation wins and the bank's result is compared); if the confirmation reaches the
    # server only after the worker took the signal, the bank's result is booked and the confirmation
    # agrees with it, or is refused as too late (nothing left UNKNOWN). Either way one outcome is booked.
    await bank(handle, "PAID", batch_id="B2", bank_ref="REF-9")
    confirming = asyncio.create_task(
        refusal_of(handle.execute_update(WithdrawalWorkflow.resolve, Resolution(outcome="PAID", by="bob")))
    )
    async with flow.new_worker():
        refused = await confirming
        result = await handle.result()
    assert refused in (None, Refusal.NOT_UNKNOWN) and result.status == WithdrawalStatus.PAID
    booked = [(o.status, o.resolved_by) for o in ledger.outcomes()]
    compared = [o.status for n, o in ledger.calls if n == "withdrawals.compare_late_result"]
    assert (booked, compared) in (
        ([("UNKNOWN", None), ("PAID", "bob")], ["PAID"]),  # together: finance's outcome, the bank's compared
        ([("UNKNOWN", None), ("PAID", None)], []),  # the bank's result first: booked once
    ), (booked, compared)


PROPOSAL = Resolution(outcome="PAID", by="alice", reason="bank statement", bank_ref="REF-9")


async def unknown_payout(client: Client, flow: Flow) -> WorkflowHandle[Any, WithdrawalResult]:
    handle, _ = await open_withdrawal(client, flow, 1_000)
    # Not UNKNOWN yet: nothing to resolve.
    assert await refusal_of(handle.execute_update(WithdrawalWorkflow.resolve, PROPOSAL)) == Refusal.NOT_UNKNOWN
    await bank(handle, "UNKNOWN", batch_id="B2")
    await eventually(lambda: at_stage(handle, "UNKNOWN"))
    return handle
