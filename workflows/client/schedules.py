"""Temporal Schedules the platform runs on: created at start, updated when their settings change."""

from __future__ import annotations

from temporalio.client import (
    Client,
    Schedule,
    ScheduleActionStartWorkflow,
    ScheduleAlreadyRunningError,
    ScheduleOverlapPolicy,
    SchedulePolicy,
    ScheduleSpec,
    ScheduleUpdate,
    ScheduleUpdateInput,
)

from domain.settings import Settings
from domain.settlement import CycleInput
from workflows.client.queues import MAIN
from workflows.client.terms import settlement_terms
from workflows.ids import SCHEDULED_SETTLEMENT_WORKFLOW_ID
from workflows.settlement import SettlementWorkflow

SETTLEMENT_SCHEDULE_ID = "settlement-daily"


def settlement_schedule(settings: Settings) -> Schedule:
    return Schedule(
        action=ScheduleActionStartWorkflow(
            SettlementWorkflow.run,
            CycleInput(triggered_by="schedule", terms=settlement_terms(settings)),
            id=SCHEDULED_SETTLEMENT_WORKFLOW_ID,
            task_queue=MAIN,
        ),
        spec=ScheduleSpec(cron_expressions=[settings.settlement_schedule]),
        # A cycle still waiting for finance must not be overtaken by the next one.
        policy=SchedulePolicy(overlap=ScheduleOverlapPolicy.BUFFER_ONE),
    )


async def ensure_schedules(client: Client, settings: Settings) -> None:
    schedule = settlement_schedule(settings)
    try:
        await client.create_schedule(SETTLEMENT_SCHEDULE_ID, schedule)
    except ScheduleAlreadyRunningError:

        async def replace(_: ScheduleUpdateInput) -> ScheduleUpdate:
            return ScheduleUpdate(schedule=schedule)

        await client.get_schedule_handle(SETTLEMENT_SCHEDULE_ID).update(replace)
