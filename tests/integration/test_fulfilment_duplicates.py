"""An app retry sends the same fulfilment event twice at once: it must not be taken for the next step."""

from __future__ import annotations

import asyncio

from sqlalchemy import select, text
from temporalio.api.enums.v1 import EventType
from temporalio.client import Client

from db.engine import unit_of_work
from db.models import ServiceProvider
from tests.integration.test_order_paths import paid_order
from tests.support.sandbox_receiver import eventually
from workflows.ids import order_workflow_id


async def accepted_fulfilment_updates(temporal: Client, order_no: str) -> int:
    history = await temporal.get_workflow_handle(order_workflow_id(order_no)).fetch_history()
    return sum(
        1
        for e in history.events
        if e.event_type == EventType.EVENT_TYPE_WORKFLOW_EXECUTION_UPDATE_ACCEPTED
        and e.workflow_execution_update_accepted_event_attributes.accepted_request.input.name == "fulfilment"
    )


async def test_identical_provider_accepted_sent_concurrently_never_delivers_the_order(shop, temporal):
    """Two copies of `provider_accepted` (an app retry) reach the flow while it is still recording the
    dispatch, so both pass validation: exactly one is taken, the other is refused, nothing is delivered.

    The test holds the dispatch open with a lock on the providers table (the merchant's accept does not
    touch it), so the copies arrive inside that window every time, not by luck."""
    order = await paid_order(shop)
    order_no = order["order_no"]
    async with unit_of_work(shop.sessions) as session:
        await session.execute(text("LOCK TABLE service_providers IN EXCLUSIVE MODE"))
        provider = (
            await session.execute(
                select(ServiceProvider.id)
                .where(
                    ServiceProvider.active.is_(True),
                    ServiceProvider.online.is_(True),
                    ServiceProvider.current_order_no.is_(None),
                    ServiceProvider.merchant_id.is_(None),
                    ServiceProvider.categories.contains(["home"]),
                )
                .order_by(ServiceProvider.last_assigned_at.asc().nulls_first(), ServiceProvider.id)
                .limit(1)
            )
        ).scalar_one()  # the one the dispatch will pick (a free pool provider idle longest), once it may
        assert (await shop.accept(order)).status_code == 200

        async def dispatch_waits() -> bool:
            async with unit_of_work(shop.sessions) as probe:
                waiting = await probe.execute(
                    text(
                        "SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock' "
                        "AND query ILIKE '%service_providers%'"
                    )
                )
                return bool(waiting.scalar_one())

        await eventually(dispatch_waits, 20)
        copies = [asyncio.create_task(shop.fulfil(order_no, "provider_accepted", provider)) for _ in range(2)]

        async def both_accepted() -> bool:
            return await accepted_fulfilment_updates(temporal, order_no) >= 2

        await eventually(both_accepted, 20)
    # The lock is released: the dispatch completes and both copies are judged.
    answers = await asyncio.gather(*copies)

    codes = sorted(a.status_code for a in answers)
    assert codes == [200, 409], [a.text for a in answers]
    taken = next(a for a in answers if a.status_code == 200)
    assert taken.json()["status"] == "IN_SERVICE" and taken.json()["provider_id"] == provider
    view = await shop.order(order_no)
    assert view["status"] == "IN_SERVICE", view
    assert "delivered" not in [e["event"] for e in view["timeline"]]
    # The flow still waits for the real delivery, and takes it.
    assert (await shop.fulfil(order_no, "delivered", provider)).status_code == 200
    await shop.reaches(order_no, "DELIVERED")
