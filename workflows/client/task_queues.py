"""What Temporal knows of a task queue: who polls it (is a worker there?) and how much work waits in it."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

from temporalio.api.enums.v1 import TaskQueueType
from temporalio.api.taskqueue.v1 import TaskQueue
from temporalio.api.workflowservice.v1 import DescribeTaskQueueRequest
from temporalio.client import Client

KINDS = {"workflow": TaskQueueType.TASK_QUEUE_TYPE_WORKFLOW, "activity": TaskQueueType.TASK_QUEUE_TYPE_ACTIVITY}


@dataclass(frozen=True)
class QueueState:
    pollers: int
    """Pollers seen within the allowed age (Temporal remembers a dead worker's pollers for minutes)."""
    backlog: int
    backlog_age_seconds: float


async def describe(client: Client, queue: str, *, poller_max_age_seconds: float) -> dict[str, QueueState]:
    """Per kind (workflow, activity) of the queue; one DescribeTaskQueue call each."""
    now = datetime.now(UTC)
    out: dict[str, QueueState] = {}
    for kind, queue_type in KINDS.items():
        described = await client.workflow_service.describe_task_queue(
            DescribeTaskQueueRequest(
                namespace=client.namespace,
                task_queue=TaskQueue(name=queue),
                task_queue_type=queue_type,
                report_stats=True,
            )
        )
        recent = [
            p
            for p in described.pollers
            if p.HasField("last_access_time")
            and (now - p.last_access_time.ToDatetime(tzinfo=UTC)).total_seconds() <= poller_max_age_seconds
        ]
        stats = described.stats
        out[kind] = QueueState(
            pollers=len(recent),
            backlog=int(stats.approximate_backlog_count),
            backlog_age_seconds=stats.approximate_backlog_age.ToTimedelta().total_seconds(),
        )
    return out
