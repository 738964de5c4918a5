"""Workflow ids and handler names are wire format: running flows and recorded histories carry them.

This file is the one place that spells the ids out; everything else builds them with `workflows.ids`."""

from __future__ import annotations

import ast
import json
from datetime import date
from pathlib import Path

import pytest
from temporalio import workflow

from workers.registry import WORKFLOWS
from workflows import ids

ROOT = Path(__file__).resolve().parents[2]


def test_each_flow_has_the_id_it_always_had():
    assert ids.order_workflow_id("ORD1") == "order-ORD1"
    assert ids.payment_workflow_id("PAY1") == "payment-PAY1"
    assert ids.refund_workflow_id("RF1") == "refund-RF1"
    assert ids.withdrawal_workflow_id("WD1") == "withdrawal-WD1"
    assert ids.merchant_onboarding_workflow_id("m-1") == "onboarding-m-1"
    assert ids.settlement_workflow_id("C20261130T000000") == "settlement-C20261130T000000"
    assert ids.statement_workflow_id(41) == "statement-41"
    assert ids.recon_workflow_id("wechat", date(2026, 11, 30)) == "recon-wechat-2026-11-30"
    assert ids.PAYOUT_BATCHER_WORKFLOW_ID == "payout-batcher"
    assert ids.SCHEDULED_SETTLEMENT_WORKFLOW_ID == "settlement-scheduled"
    assert ids.discrepancy_workflow_id(7) == "discrepancy-7"
    assert ids.SCHEDULED_RECON_WORKFLOW_ID == "recon-daily-scheduled"


# The id each flow type is started under, as the id functions build it (its prefix).
_BUILT_BY = {
    "OrderWorkflow": ids.order_workflow_id("X").removesuffix("X"),
    "PaymentWorkflow": ids.payment_workflow_id("X").removesuffix("X"),
    "RefundWorkflow": ids.refund_workflow_id("X").removesuffix("X"),
    "WithdrawalWorkflow": ids.withdrawal_workflow_id("X").removesuffix("X"),
    "MerchantOnboardingWorkflow": ids.merchant_onboarding_workflow_id("X").removesuffix("X"),
    "SettlementWorkflow": ids.settlement_workflow_id("X").removesuffix("X"),
    "StatementWorkflow": ids.statement_workflow_id("X").removesuffix("X"),
    "ReconciliationWorkflow": ids.recon_workflow_id("wechat", date(2026, 1, 1)).removesuffix("wechat-2026-01-01"),
    "PayoutBatchWorkflow": ids.PAYOUT_BATCHER_WORKFLOW_ID,
    "DiscrepancyWorkflow": ids.discrepancy_workflow_id(0).removesuffix("0"),
    "ReconDailyWorkflow": ids.SCHEDULED_RECON_WORKFLOW_ID,
}


def _mentioned(node: object) -> list[str]:
    """Every workflow id a recorded history mentions (its parent, children, flows it signalled)."""
    if isinstance(node, dict):
        found = [node["workflowId"]] if isinstance(node.get("workflowId"), str) else []
        return found + [i for v in node.values() for i in _mentioned(v)]
    if isinstance(node, list):
        return [i for v in node for i in _mentioned(v)]
    return []


def _children() -> list[tuple[str, str, str]]:
    out = []
    for path in sorted((ROOT / "tests" / "histories").glob("*.json")):
        for event in json.loads(path.read_text())["events"]:
            child = event.get("startChildWorkflowExecutionInitiatedEventAttributes")
            if child:
                out.append((path.stem, child["workflowType"]["name"], child["workflowId"]))
    return out


@pytest.mark.parametrize(("history", "wf_type", "workflow_id"), _children())
def test_children_in_recorded_histories_have_the_ids_the_functions_build(history, wf_type, workflow_id):
    assert workflow_id.startswith(_BUILT_BY[wf_type]), (history, wf_type, workflow_id)


def test_every_id_a_recorded_history_mentions_is_one_the_functions_build():
    histories = sorted((ROOT / "tests" / "histories").glob("*.json"))
    mentioned = {i for path in histories for i in _mentioned(json.loads(path.read_text()))}
    assert mentioned
    assert {i for i in mentioned if not i.startswith(tuple(_BUILT_BY.values()))} == set()


# Every handler, by the name Temporal knows it by. A client calls handlers by reference
# (`RefundWorkflow.approve_manual`), so renaming a method renames the handler: running flows would
# then refuse the calls. Rename only with both names served for as long as old flows run.
HANDLERS = {
    "MerchantOnboardingWorkflow": {"submitted", "review", "resubmit", "notification", "payment_event"},
    "OrderWorkflow": {"placed", "payment_event", "cancel", "accept", "fulfilment", "confirm"},
    "PaymentWorkflow": {"notification", "close"},
    "PayoutBatchWorkflow": {"queued", "notification"},
    "ReconciliationWorkflow": {"started"},
    "DiscrepancyWorkflow": {"recheck", "resolve", "approve"},
    "ReconDailyWorkflow": set(),
    "RefundWorkflow": {"opened", "notification", "approve_manual"},
    "SettlementWorkflow": set(),
    "StatementWorkflow": {"adjust", "decide"},
    "WithdrawalWorkflow": {"opened", "decide", "resolve", "payout"},
}


def test_every_handler_keeps_its_name():
    served = {}
    for cls in WORKFLOWS:
        defn = workflow._Definition.must_from_class(cls)
        names = {n for n in [*defn.signals, *defn.updates, *defn.queries] if n is not None}
        served[defn.name] = names
    assert served == HANDLERS


def _imports(path: Path) -> set[str]:
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.module:
            found.add(node.module)
        elif isinstance(node, ast.Import):
            found.update(a.name for a in node.names)
    return found


@pytest.mark.parametrize("path", sorted((ROOT / "workflows").glob("*.py")), ids=lambda p: p.name)
def test_workflow_code_never_imports_the_client_side(path):
    """Workflow modules run in the sandbox: the client package (Temporal client code) stays out of them;
    they share only the pure ids module with it."""
    imported = _imports(path)
    assert not {m for m in imported if m.startswith(("workflows.client", "temporalio.client"))}, imported
