"""Keeping a flow visible to operators: search attributes and current details at every stage change."""

from __future__ import annotations

from typing import Any

from temporalio import workflow
from temporalio.common import SearchAttributeUpdate

from workflows.search_attributes import BO_AMOUNT_MINOR, BO_FLOW, BO_MERCHANT_ID, BO_ORDER_NO, BO_STAGE, BO_STAGE_SINCE


def identify(
    flow: str,
    *,
    order_no: str | None = None,
    merchant_id: str | None = None,
    amount_minor: int | None = None,
    entering: tuple[str, str] | None = None,
) -> None:
    """Set the attributes that do not change over the flow's life; with `entering` (stage, details),
    enter that first stage in the same upsert (one history event and one visibility write, not two)."""
    updates: list[SearchAttributeUpdate[Any]] = [BO_FLOW.value_set(flow)]
    if order_no is not None:
        updates.append(BO_ORDER_NO.value_set(order_no))
    if merchant_id is not None:
        updates.append(BO_MERCHANT_ID.value_set(merchant_id))
    if amount_minor is not None:
        updates.append(BO_AMOUNT_MINOR.value_set(amount_minor))
    if entering is not None:
        updates.extend(_stage(entering[0]))
        workflow.set_current_details(entering[1])
    workflow.upsert_search_attributes(updates)


def enter(stage: str, details: str) -> None:
    """Move to `stage` (BoStage, BoStageSince) and say in plain words what the flow waits for."""
    workflow.upsert_search_attributes(_stage(stage))
    workflow.set_current_details(details)


def _stage(stage: str) -> list[SearchAttributeUpdate[Any]]:
    return [BO_STAGE.value_set(stage), BO_STAGE_SINCE.value_set(workflow.now())]


def say(details: str) -> None:
    """Update the human-readable account without changing stage (e.g. poll counts)."""
    workflow.set_current_details(details)
