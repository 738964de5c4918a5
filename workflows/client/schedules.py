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

from domain.recon.runs import DailyInput
from domain.settings import Settings
from domain.settlement import CycleInput
from workflows.client.queues import MAIN
from workflows.client.terms import discrepancy_terms, settlement_terms
from workflows.ids import SCHEDULED_RECON_WORKFLOW_ID, SCHEDULED_SETTLEMENT_WORKFLOW_ID
from workflows.recon_daily import ReconDailyWorkflow
from workflows.settlement import SettlementWorkflow

SETTLEMENT_SCHEDULE_ID = "settlement-daily"
RECON_SCHEDULE_ID = "recon-daily"


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


def recon_schedule(settings: Settings) -> Schedule:
    return Schedule(
        action=ScheduleActionStartWorkflow(
            ReconDailyWorkflow.run,
            DailyInput(discrepancy_terms=discrepancy_terms(settings)),
            id=SCHEDULED_RECON_WORKFLOW_ID,
            task_queue=MAIN,
        ),
        spec=ScheduleSpec(cron_expressions=[settings.recon_schedule]),
        # A day still downloading (a bill being created) is not overtaken by the next day's start.
        policy=SchedulePolicy(overlap=ScheduleOverlapPolicy.BUFFER_ONE),
    )


async def ensure_schedules(client: Client, settings: Settings) -> None:
    for schedule_id, schedule in (
        (SETTLEMENT_SCHEDULE_ID, settlement_schedule(settings)),
        (RECON_SCHEDULE_ID, recon_schedule(settings)),
    ):
        await _ensure(client, schedule_id, schedule)


async def _ensure(client: Client, schedule_id: str, schedule: Schedule) -> None:
    try:
        await client.create_schedule(schedule_id, schedule)
    except ScheduleAlreadyRunningError:

        async def replace(_: ScheduleUpdateInput) -> ScheduleUpdate:
            return ScheduleUpdate(schedule=schedule)

        await client.get_schedule_handle(schedule_id).update(replace)
