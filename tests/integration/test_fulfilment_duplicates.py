"""An app retry sends the same fulfilment event twice at once: it must not be taken for the next step."""

from __future__ import annotations

import asyncio
import time

import httpx
from sqlalchemy import select

from db.engine import unit_of_work
from db.models import ServiceProvider
from tests.integration.test_order_paths import paid_order


async def next_provider(shop) -> str:  # type: ignore[no-untyped-def]
    """The provider the next dispatch offers the order to (the one idle longest; tests run one at a time)."""
    async with unit_of_work(shop.sessions) as session:
        found = (
            await session.execute(
                select(ServiceProvider.id)
                .where(ServiceProvider.active.is_(True))
                .order_by(ServiceProvider.last_assigned_at.asc().nulls_first(), ServiceProvider.id)
                .limit(1)
            )
        ).scalar_one()
    return str(found)


async def test_identical_provider_accepted_sent_concurrently_never_delivers_the_order(shop):
    """The app keeps retrying `provider_accepted` from several connections while the merchant accepts,
    so copies reach the flow while it is still recording the dispatch (when they can all pass
    validation): exactly one is taken, every other copy is refused, and the order is not delivered."""
    order = await paid_order(shop)
    order_no = order["order_no"]
    provider = await next_provider(shop)
    taken = asyncio.Event()
    answers: list[httpx.Response] = []

    async def app_retrying() -> None:
        deadline = time.monotonic() + 20
        while not taken.is_set() and time.monotonic() < deadline:
            r = await shop.fulfil(order_no, "provider_accepted", provider)
            answers.append(r)
            if r.status_code == 200:
                taken.set()

    retries = [asyncio.create_task(app_retrying()) for _ in range(6)]
    assert (await shop.accept(order)).status_code == 200
    await asyncio.gather(*retries)

    view = await shop.order(order_no)
    assert view["provider_id"] == provider, "the dispatch chose another provider: the test's premise failed"
    assert {r.status_code for r in answers} <= {200, 409}, [r.text for r in answers if r.status_code not in (200, 409)]
    ok = [r for r in answers if r.status_code == 200]
    assert len(ok) == 1 and ok[0].json()["status"] == "IN_SERVICE", [r.text for r in ok]
    assert view["status"] == "IN_SERVICE", view
    assert "delivered" not in [e["event"] for e in view["timeline"]]
    # The flow still waits for the real delivery, and takes it.
    assert (await shop.fulfil(order_no, "delivered", provider)).status_code == 200
    await shop.reaches(order_no, "DELIVERED")
