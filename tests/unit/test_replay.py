"""Replays every recorded history in tests/histories/ against the current workflow code.

A change to a workflow that would break a running flow (non-determinism) fails here; guard such a
change with `workflow.patched`. Record a history with `python -m ops history export WORKFLOW_ID`.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from temporalio.client import WorkflowHistory
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.worker import Replayer

from workers.registry import WORKFLOWS

HISTORIES = Path(__file__).resolve().parent.parent / "histories"


def _recorded() -> list[tuple[str, str, dict]]:  # type: ignore[type-arg]
    out = []
    for path in sorted(HISTORIES.glob("*.json")):
        data = json.loads(path.read_text())
        started = data["events"][0]["workflowExecutionStartedEventAttributes"]
        out.append((path.stem, started["workflowType"]["name"], data))
    return out


def test_every_workflow_type_has_a_recorded_history():
    names = {wf.__temporal_workflow_definition.name for wf in WORKFLOWS}  # type: ignore[attr-defined]
    recorded = {wf_type for _, wf_type, _ in _recorded()}
    assert not names - recorded, f"record a history for: {sorted(names - recorded)}"


@pytest.mark.parametrize(
    ("name", "data"), [(name, data) for name, _, data in _recorded()], ids=[name for name, _, _ in _recorded()]
)
async def test_recorded_history_replays_on_the_current_code(name, data):
    replayer = Replayer(workflows=WORKFLOWS, data_converter=pydantic_data_converter)
    await replayer.replay_workflow(WorkflowHistory.from_json(name, data))
