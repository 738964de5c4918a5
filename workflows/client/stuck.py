"""Finding stuck flows: running, and resting in their stage longer than that stage should last."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from temporalio.client import Client

from domain.settings import Settings
from domain.stuck import sla_for, stage_slas
from workflows.search_attributes import BO_AMOUNT_MINOR, BO_FLOW, BO_MERCHANT_ID, BO_ORDER_NO, BO_STAGE, BO_STAGE_SINCE


async def stuck_flows(client: Client, settings: Settings, *, limit: int = 200) -> list[dict[str, Any]]:
    slas = stage_slas(settings)
    now = datetime.now(UTC)
    # Visibility narrows to flows that have rested at least the shortest SLA; each stage's own SLA decides.
    shortest = min([settings.stuck_after_seconds, *slas.values()])
    since = (now - timedelta(seconds=shortest)).isoformat().replace("+00:00", "Z")
    query = f'ExecutionStatus = "Running" AND BoStageSince < "{since}"'
    found: list[tuple[float, dict[str, Any]]] = []
    async for wf in client.list_workflows(query, page_size=200):
        attrs = wf.typed_search_attributes
        stage, entered = attrs.get(BO_STAGE), attrs.get(BO_STAGE_SINCE)
        if stage is None or entered is None:
            continue
        sla = sla_for(stage, slas, settings.stuck_after_seconds)
        resting = (now - entered).total_seconds()
        overrun = resting - sla
        if overrun <= 0:
            continue
        found.append(
            (
                overrun,
                {
                    "workflow_id": wf.id,
                    "type": wf.workflow_type,
                    "flow": attrs.get(BO_FLOW),
                    "stage": stage,
                    "since": entered,
                    "resting_seconds": int(resting),
                    "sla_seconds": sla,
                    "overrun_seconds": round(overrun, 3),
                    "order_no": attrs.get(BO_ORDER_NO),
                    "merchant_id": attrs.get(BO_MERCHANT_ID),
                    "amount_minor": attrs.get(BO_AMOUNT_MINOR),
                },
            )
        )
    # Worst first by how far past its SLA each flow is (exactly, not rounded); the limit applies after
    # sorting so the worst flows are never cut off by the order visibility happens to list them in.
    found.sort(key=lambda f: -f[0])
    return [f for _, f in found[:limit]]
