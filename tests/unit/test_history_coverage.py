"""The recorded histories reach every activity each workflow type can schedule, and every signal and
update handler is exercised somewhere.

A branch added to a flow without a recorded history that reaches it would replay-test nothing: per
workflow type, every activity its code names must be scheduled in at least one history in
tests/histories/ (record one with BACKOFFICE_RECORD_HISTORIES=1 and `record_history` in a test).
Likewise a signal or update handler must be carried by a recorded history or named (as
`SomeWorkflow.handler`) by a test in tests/workflows/, where the flow runs on its own."""

from __future__ import annotations

import ast
import importlib
import inspect
from pathlib import Path

import pytest

from tests.unit.test_replay import _recorded
from workers.registry import WORKFLOWS

WORKFLOW_TESTS = Path(__file__).parents[1] / "workflows"

# Branches no test can reach in its time, each with the reason; keep this list short and say in a
# closing note what would make each one recordable.
NOT_RECORDABLE = {
    ("PayoutBatchWorkflow", "payouts.still_open"): "asked only after a 600 s silent poll after UNKNOWN",
    ("WithdrawalWorkflow", "withdrawals.compare_late_result"): "a bank result in the same task as finance's resolve",
}


# Flows that schedule no activity of their own (they only start other flows): nothing to cover.
NO_ACTIVITIES = {"ReconDailyWorkflow": "starts each source's ReconciliationWorkflow of the previous day"}


def _activities_named_in(workflow: type) -> set[str]:
    """Activity names of every `SomeActivities.method` the workflow's module (and its `<module>_*.py`
    helpers) refers to."""
    module = importlib.import_module(workflow.__module__)
    path = Path(inspect.getfile(module))
    names: set[str] = set()
    for source in [path, *sorted(path.parent.glob(f"{path.stem}_*.py"))]:
        scope = vars(importlib.import_module(f"{module.__package__}.{source.stem}"))
        for node in ast.walk(ast.parse(source.read_text())):
            if isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name):
                owner = scope.get(node.value.id)
                definition = getattr(getattr(owner, node.attr, None), "__temporal_activity_definition", None)
                if inspect.isclass(owner) and definition is not None:
                    names.add(definition.name)
    return names


def _scheduled_by_type() -> dict[str, set[str]]:
    scheduled: dict[str, set[str]] = {}
    for _, wf_type, data in _recorded():
        seen = scheduled.setdefault(wf_type, set())
        for event in data["events"]:
            attrs = event.get("activityTaskScheduledEventAttributes")
            if attrs:
                seen.add(attrs["activityType"]["name"])
    return scheduled


@pytest.mark.parametrize("workflow", WORKFLOWS, ids=lambda wf: wf.__temporal_workflow_definition.name)
def test_recorded_histories_schedule_every_activity_the_workflow_uses(workflow: type) -> None:
    name = workflow.__temporal_workflow_definition.name  # type: ignore[attr-defined]
    if name in NO_ACTIVITIES:
        assert not _activities_named_in(workflow), f"{name} schedules activities now: record its histories"
        return
    used = _activities_named_in(workflow)
    assert used, f"found no activity in {name}'s code: the scan is broken"
    missing = used - _scheduled_by_type().get(name, set()) - {a for (w, a) in NOT_RECORDABLE if w == name}
    assert not missing, f"no recorded history of {name} schedules {sorted(missing)}: record one that does"


def _handlers_of(workflow: type) -> dict[str, str]:
    """The workflow's named signal and update handlers: method name -> handler name."""
    d = workflow.__temporal_workflow_definition  # type: ignore[attr-defined]
    return {h.fn.__name__: name for name, h in [*d.signals.items(), *d.updates.items()] if name}


def _handled_in_histories() -> dict[str, set[str]]:
    handled: dict[str, set[str]] = {}
    for _, wf_type, data in _recorded():
        seen = handled.setdefault(wf_type, set())
        for event in data["events"]:
            if signal := event.get("workflowExecutionSignaledEventAttributes"):
                seen.add(signal["signalName"])
            if update := event.get("workflowExecutionUpdateAcceptedEventAttributes"):
                seen.add(update["acceptedRequest"]["input"]["name"])
    return handled


def _handled_in_workflow_tests() -> dict[str, set[str]]:
    """Handlers a tests/workflows module (a test or a helper) names by typed reference
    (`RefundWorkflow.approve_manual`)."""
    handled: dict[str, set[str]] = {}
    for path in sorted(p for p in WORKFLOW_TESTS.glob("*.py") if p.stem != "__init__"):  # tests and their helpers
        scope = vars(importlib.import_module(f"tests.workflows.{path.stem}"))
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name):
                owner = scope.get(node.value.id)
                definition = getattr(owner, "__temporal_workflow_definition", None)
                if inspect.isclass(owner) and definition is not None:
                    name = _handlers_of(owner).get(node.attr)
                    if name is not None:
                        handled.setdefault(definition.name, set()).add(name)
    return handled


@pytest.mark.parametrize("workflow", WORKFLOWS, ids=lambda wf: wf.__temporal_workflow_definition.name)
def test_every_signal_and_update_handler_is_exercised_by_a_history_or_a_workflow_test(workflow: type) -> None:
    name = workflow.__temporal_workflow_definition.name  # type: ignore[attr-defined]
    handlers = set(_handlers_of(workflow).values())
    exercised = _handled_in_histories().get(name, set()) | _handled_in_workflow_tests().get(name, set())
    missing = handlers - exercised
    assert not missing, (
        f"{name}'s handlers {sorted(missing)} are in no recorded history and no tests/workflows test: "
        "exercise them in one"
    )
