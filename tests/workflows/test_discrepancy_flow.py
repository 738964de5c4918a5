"""DiscrepancyWorkflow on its own: each automatic action told to the flow that owns the record (a stand-in
flow under the real id hears the signal), a SHORT held and woken by a later run, a SHORT past its hold
handed to finance, finance's write-off approved by a second person only, a resolution that does not fit
refused; and the `recon-daily` flow starting each source's run of the previous day.

With BACKOFFICE_RECORD_HISTORIES=1 each test keeps its finished flow's history in tests/histories/."""

from __future__ import annotations

import json
import os
import re
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any

from temporalio import activity, workflow
from temporalio.client import Client, WorkflowHandle
from temporalio.common import RawValue
from temporalio.worker import Worker

from domain.payments import Captured, CaptureRequest
from domain.recon.discrepancy import (
    Approval,
    DiscrepancyFacts,
    DiscrepancyInput,
    DiscrepancyOutcome,
    DiscrepancyResult,
    FinanceAction,
    FinanceDecision,
)
from domain.recon.lines import SHANGHAI
from domain.recon.runs import DailyInput, DailyResult, DiscrepancyTerms, ReconInput, ReconResult, RunStatus
from domain.refunds import RefundInput, RefundResult, RefundStatus, RefundTerms
from tests.workflows.conftest import at_stage, eventually, refusal_of
from workflows.discrepancy import DiscrepancyWorkflow
from workflows.ids import discrepancy_workflow_id
from workflows.recon_daily import ReconDailyWorkflow

HISTORIES = Path(__file__).resolve().parent.parent / "histories"
REFUND_TERMS = RefundTerms(
    poll_initial_seconds=1, poll_max_seconds=60, approval_remind_seconds=60, notify_url="x", manual_bank="platform"
)


def terms(hold: int = 60) -> DiscrepancyTerms:
    return DiscrepancyTerms(
        short_hold_seconds=hold, remind_seconds=1, check_seconds=1, act_within_seconds=4, refund=REFUND_TERMS
    )


@workflow.defn(name="Listener", sandboxed=False)
class Listener:
    """Stands in for the payment, refund or withdrawal flow under its real id: keeps what it is told."""

    def __init__(self) -> None:
        self.heard: list[tuple[str, Any]] = []

    @workflow.signal(dynamic=True)
    def any_signal(self, name: str, args: Sequence[RawValue]) -> None:
        self.heard.append((name, workflow.payload_converter().from_payload(args[0].payload)))

    @workflow.query
    def got(self) -> list[tuple[str, Any]]:
        return self.heard

    @workflow.run
    async def run(self) -> None:
        await workflow.wait_condition(lambda: False)


@workflow.defn(name="ReconciliationWorkflow", sandboxed=False)
class FakeRun:
    @workflow.run
    async def run(self, inp: ReconInput) -> ReconResult:
        return ReconResult(run_id=1, source=inp.source, bill_date=inp.bill_date, status=RunStatus.EMPTY)


@workflow.defn(name="RefundWorkflow", sandboxed=False)
class FakeRefund:
    """Stands in for a refund flow: keeps its input and finishes when told."""

    def __init__(self) -> None:
        self.done = False

    @workflow.signal
    def finish(self) -> None:
        self.done = True

    @workflow.run
    async def run(self, inp: RefundInput) -> RefundResult:
        await workflow.wait_condition(lambda: self.done)
        return RefundResult(refund_no=inp.refund_no, status=RefundStatus.SUCCEEDED)


@dataclass
class Records:
    """The discrepancy as the doubles keep it; `later` replaces the facts after the first look."""

    facts: DiscrepancyFacts
    later: dict[str, Any] = field(default_factory=dict)
    looks: int = 0
    calls: list[tuple[str, Any]] = field(default_factory=list)

    def names(self) -> list[str]:
        return [n for n, _ in self.calls]

    def doubles(self) -> list[Any]:
        @activity.defn(name="recon.discrepancy_facts")
        async def facts(discrepancy_id: int) -> DiscrepancyFacts:
            self.looks += 1
            if self.looks > 1 and self.later:
                self.facts = self.facts.model_copy(update=self.later)
            return self.facts

        @activity.defn(name="recon.discrepancy_record")
        async def record(o: DiscrepancyOutcome) -> None:
            self.calls.append(("record", o))
            self.facts = self.facts.model_copy(update={"status": o.status})

        @activity.defn(name="recon.discrepancy_to_finance")
        async def to_finance(discrepancy_id: int, note: str) -> DiscrepancyFacts:
            self.calls.append(("to_finance", note))
            return self.facts

        @activity.defn(name="recon.discrepancy_clear")
        async def clear(discrepancy_id: int, action: FinanceAction, note: str, by: str) -> None:
            self.calls.append(("clear", (action, by)))

        @activity.defn(name="payments.capture")
        async def capture(c: CaptureRequest) -> Captured:
            self.calls.append(("capture", c))
            return Captured(entry_id=1, first=True)

        return [facts, record, to_finance, clear, capture]


def facts(type_: str, kind: str = "PAYMENT", **kw: Any) -> DiscrepancyFacts:
    n = int(uuid.uuid4().int % 10**9)
    base = {"discrepancy_id": n, "source": "wechat", "type": type_, "kind": kind, "status": "OPEN", "our_no": f"PAY{n}"}
    return DiscrepancyFacts.model_validate(base | kw)


async def keep(client: Client, handle: WorkflowHandle[Any, Any], name: str) -> None:
    """Keep the finished flow's history (BACKOFFICE_RECORD_HISTORIES=1), without this machine's paths."""
    if os.environ.get("BACKOFFICE_RECORD_HISTORIES") != "1":
        return
    data = json.loads((await handle.fetch_history()).to_json())
    text = json.dumps(data, indent=2)
    text = re.sub(r'"stackTrace": "[^"]*"', '"stackTrace": ""', text)
    assert not re.search(r"/(work|tmp|root)/", text), "a machine path in the history"
    (HISTORIES / f"{name}.json").write_text(text)


async def run_flow(client: Client, records: Records, hold: int = 60) -> tuple[WorkflowHandle[Any, Any], Worker]:
    queue = f"wf-test-{uuid.uuid4().hex[:8]}"
    worker = Worker(
        client,
        task_queue=queue,
        workflows=[DiscrepancyWorkflow, Listener, FakeRefund],
        activities=records.doubles(),
        max_cached_workflows=0,
    )
    handle = await client.start_workflow(
        DiscrepancyWorkflow.run,
        DiscrepancyInput(discrepancy_id=records.facts.discrepancy_id, terms=terms(hold)),
        id=discrepancy_workflow_id(records.facts.discrepancy_id),
        task_queue=queue,
    )
    return handle, worker


async def listener(client: Client, worker: Worker, workflow_id: str) -> WorkflowHandle[Any, Any]:
    return await client.start_workflow(Listener.run, id=workflow_id, task_queue=worker.task_queue)


async def test_a_refund_the_channel_made_is_completed_through_its_refund_flow(temporal: Client) -> None:
    no = f"RF{uuid.uuid4().hex[:8]}"
    records = Records(
        facts("STATUS_MISMATCH", "REFUND", our_no=no, refund_status="PROCESSING"),
        later={"refund_status": "SUCCEEDED"},
    )
    handle, worker = await run_flow(temporal, records)
    async with worker:
        refund = await listener(temporal, worker, f"refund-{no}")
        result: DiscrepancyResult = await handle.result()
        heard = await refund.query(Listener.got)
        await refund.terminate()
    assert (result.status, result.action) == ("RESOLVED", None)
    [(name, note)] = heard
    assert name == "notification" and (note["out_refund_no"], note["status"]) == (no, "SUCCESS")
    assert [o.status for n, o in records.calls if n == "record"] == ["ACTING", "RESOLVED"]
    await keep(temporal, handle, "discrepancy_refund_completed")


async def test_a_payout_paid_on_the_bank_statement_is_told_to_its_withdrawal(temporal: Client) -> None:
    no = f"WD{uuid.uuid4().hex[:8]}"
    f = facts("STATUS_MISMATCH", "PAYOUT", our_no=no, withdrawal_status="UNKNOWN", statement_status="PAID")
    records = Records(f.model_copy(update={"party_no": "BANKREF1"}), later={"withdrawal_status": "PAID"})
    handle, worker = await run_flow(temporal, records)
    async with worker:
        payout = await listener(temporal, worker, f"withdrawal-{no}")
        result = await handle.result()
        heard = await payout.query(Listener.got)
        await payout.terminate()
    assert result.status == "RESOLVED"
    [(name, outcome)] = heard
    assert name == "payout" and (outcome["status"], outcome["bank_ref"]) == ("PAID", "BANKREF1")
    await keep(temporal, handle, "discrepancy_payout_resolved")


async def test_a_long_payment_of_a_waiting_order_is_told_to_its_payment_flow(temporal: Client) -> None:
    no = f"PAY{uuid.uuid4().hex[:8]}"
    f = facts("LONG", our_no=no, order_status="AWAITING_PAYMENT", payment_status="PENDING", statement_minor=1234)
    records = Records(f.model_copy(update={"party_no": "4200001"}), later={"payment_status": "SUCCEEDED"})
    handle, worker = await run_flow(temporal, records)
    async with worker:
        payment = await listener(temporal, worker, f"payment-{no}")
        result = await handle.result()
        heard = await payment.query(Listener.got)
        await payment.terminate()
    assert result.status == "RESOLVED"
    [(name, note)] = heard
    assert name == "notification"
    assert (note["out_trade_no"], note["amount_minor"], note["channel_txn_id"]) == (no, 1234, "4200001")
    await keep(temporal, handle, "discrepancy_long_captured")


async def test_a_duplicate_payment_is_refunded_once_under_the_payment_flows_own_number(temporal: Client) -> None:
    n = uuid.uuid4().hex[:8].upper()
    f = facts("DUPLICATE_PAYMENT", our_no=f"PAY{n}", order_no=f"ORD{n}", extra_channel="alipay", platform_minor=700)
    first = Records(f, later={"extra_refunded": True})
    handle, worker = await run_flow(temporal, first)
    async with worker:
        result = await handle.result()
        refund = temporal.get_workflow_handle_for(FakeRefund.run, f"refund-RF{n}AL")
        started = (await refund.describe()).status
        # Another flow for the same duplicate (or the payment flow's own refund) finds that refund there.
        second = Records(f.model_copy(update={"discrepancy_id": f.discrepancy_id + 1}), later={"extra_refunded": True})
        again, worker2 = await run_flow(temporal, second)
        async with worker2:
            assert (await again.result()).status == "RESOLVED"
        await refund.signal(FakeRefund.finish)
        assert (await refund.result()).refund_no == f"RF{n}AL"
    assert (result.status, started.name) == ("RESOLVED", "RUNNING")
    runs = [x async for x in temporal.list_workflows(f"WorkflowId = 'refund-RF{n}AL'")]
    assert len(runs) == 1  # refunded once
    assert [o.action for n_, o in first.calls if n_ == "record"] == ["REFUND_EXTRA", "REFUND_EXTRA"]
    await keep(temporal, handle, "discrepancy_duplicate_refunded")


async def test_an_action_whose_flow_is_gone_goes_to_finance(temporal: Client) -> None:
    records = Records(facts("STATUS_MISMATCH", "REFUND", our_no="RFGONE1", refund_status="PROCESSING"))
    handle, worker = await run_flow(temporal, records)
    async with worker:
        await eventually(lambda: at_stage(handle, "AWAITING_FINANCE_APPROVAL"), 15)
        await handle.terminate()
    assert records.names()[-1] == "to_finance" and "failed" in records.calls[-1][1]


async def test_a_short_is_held_and_resolved_when_a_later_run_carries_it(temporal: Client) -> None:
    records = Records(facts("SHORT", status="HELD", platform_minor=500))
    handle, worker = await run_flow(temporal, records, hold=3600)
    async with worker:
        await eventually(lambda: at_stage(handle, "HELD"))
        records.later = {"status": "RESOLVED"}  # the next day's run carried it
        await handle.signal(DiscrepancyWorkflow.recheck)
        result = await handle.result()
    assert result.status == "RESOLVED"
    assert "to_finance" not in records.names()
    await keep(temporal, handle, "discrepancy_short_resolved_later")


async def test_a_short_past_its_hold_goes_to_finance_and_a_write_off_needs_a_second_person(
    temporal: Client,
) -> None:
    records = Records(facts("SHORT", status="HELD", platform_minor=500))
    handle, worker = await run_flow(temporal, records, hold=1)
    async with worker:
        await eventually(lambda: at_stage(handle, "AWAITING_FINANCE_APPROVAL"), 15)
        assert records.names() == ["to_finance"]
        alice = FinanceDecision(action=FinanceAction.COMPLETE_ORDER, reason="x", by="alice", by_key_id=1)
        assert await refusal_of(handle.execute_update(DiscrepancyWorkflow.resolve, alice)) == "ACTION_NOT_APPLICABLE"
        early = Approval(by="bob", by_key_id=2)
        assert await refusal_of(handle.execute_update(DiscrepancyWorkflow.approve, early)) == "NOT_AWAITING_APPROVAL"
        write_off = alice.model_copy(update={"action": FinanceAction.WRITE_OFF, "reason": "never paid at the channel"})
        proposed = await handle.execute_update(DiscrepancyWorkflow.resolve, write_off)
        assert (proposed.status, proposed.proposed_by) == ("AWAITING_APPROVAL", "alice")
        again = Approval(by="alice", by_key_id=3)  # alice's second key: still alice
        assert await refusal_of(handle.execute_update(DiscrepancyWorkflow.approve, again)) == "SAME_PERSON"
        assert "clear" not in records.names()
        approved = await handle.execute_update(DiscrepancyWorkflow.approve, early)
        result = await handle.result()
    assert approved.status == result.status == "RESOLVED"
    assert records.calls[-1] == ("clear", (FinanceAction.WRITE_OFF, "bob"))
    await keep(temporal, handle, "discrepancy_short_written_off")


async def test_the_daily_run_reconciles_each_source_of_the_previous_shanghai_day(temporal: Client) -> None:
    queue = f"wf-test-{uuid.uuid4().hex[:8]}"
    worker = Worker(temporal, task_queue=queue, workflows=[ReconDailyWorkflow, FakeRun], max_cached_workflows=0)
    async with worker:
        handle = await temporal.start_workflow(
            ReconDailyWorkflow.run,
            DailyInput(discrepancy_terms=terms()),
            id=f"recon-daily-{uuid.uuid4().hex[:8]}",
            task_queue=queue,
        )
        result: DailyResult = await handle.result()
    started = (await handle.describe()).start_time.astimezone(SHANGHAI).date()
    assert result.bill_date == str(started - timedelta(days=1))
    assert result.runs == {"wechat": "EMPTY", "alipay": "EMPTY", "bank": "EMPTY"}
    await keep(temporal, handle, "recon_daily_started_each_source")
