"""Keeping a flow visible to operators: search attributes and current details at every stage change."""

from __future__ import annotations

from typing import Any

from temporalio import workflow
from temporalio.common import SearchAttributeUpdate

from workflows.search_attributes import BO_AMOUNT_MINOR, BO_FLOW, BO_MERCHANT_ID, BO_ORDER_NO, BO_STAGE, BO_STAGE_SINCE


def identify(
    flow: str, *, order_no: str | None = None, merchant_id: str | None = None, amount_minor: int | None = None
) -> None:
    """Set the attributes that do not change over the flow's life."""
    updates: list[SearchAttributeUpdate[Any]] = [BO_FLOW.value_set(flow)]
    if order_no is not None:
        updates.append(BO_ORDER_NO.value_set(order_no))
    if merchant_id is not None:
        updates.append(BO_MERCHANT_ID.value_set(merchant_id))
    if amount_minor is not None:
        updates.append(BO_AMOUNT_MINOR.value_set(amount_minor))
    workflow.upsert_search_attributes(updates)


def enter(stage: str, details: str) -> None:
    """Move to `stage` (BoStage, BoStageSince) and say in plain words what the flow waits for."""
    workflow.upsert_search_attributes([BO_STAGE.value_set(stage), BO_STAGE_SINCE.value_set(workflow.now())])
    workflow.set_current_details(details)


def say(details: str) -> None:
    """Update the human-readable account without changing stage (e.g. poll counts)."""
    workflow.set_current_details(details)
