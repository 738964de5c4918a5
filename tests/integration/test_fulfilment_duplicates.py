"""An app retry sends the same fulfilment event twice at once: it must not be taken for the next step."""

from __future__ import annotations

import asyncio

from tests.integration.test_order_paths import paid_order


async def test_identical_provider_accepted_sent_concurrently_never_delivers_the_order(shop):
    for _ in range(3):  # a few orders: the duplicates must race the dispatch result, not just each other
        order = await paid_order(shop)
        order_no = order["order_no"]
        assert (await shop.accept(order)).status_code == 200
        provider = await shop.offered_provider(order_no)
        answers = await asyncio.gather(*(shop.fulfil(order_no, "provider_accepted", provider) for _ in range(4)))
        statuses = sorted(a.status_code for a in answers)
        # One is taken; each repeat is refused or answers the state the first one produced.
        assert statuses.count(200) >= 1 and set(statuses) <= {200, 409}, [a.text for a in answers]
        assert all(a.json()["status"] == "IN_SERVICE" for a in answers if a.status_code == 200)
        view = await shop.order(order_no)
        assert view["status"] == "IN_SERVICE", view
        assert [e["event"] for e in view["timeline"]].count("delivered") == 0
        # The flow still waits for the real delivery, and takes it.
        assert (await shop.fulfil(order_no, "delivered", provider)).status_code == 200
        await shop.reaches(order_no, "DELIVERED")
