"""One happy-path order lifecycle driven through the API and the sandbox, as the apps and a customer do."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import httpx
from temporalio.client import Client

from workflows.ids import order_workflow_id

# Order-status polls start quick (a payment usually lands within a few hundred milliseconds) and back
# off, so that waiting lanes do not load the API they are measuring.
POLL_FIRST_S = 0.025
POLL_MAX_S = 0.2
STEP_TIMEOUT_S = 120.0


class LifecycleError(RuntimeError):
    pass


@dataclass(frozen=True)
class Merchant:
    merchant_id: str
    key: str


@dataclass(frozen=True)
class Lifecycle:
    order_no: str
    payment_no: str
    steps: dict[str, float]
    """Seconds spent in each step, in order: where a slow lifecycle loses its time."""

    @property
    def create_ms(self) -> float:
        return self.steps["create"] * 1000

    @property
    def total_s(self) -> float:
        return sum(self.steps.values())


class Laps:
    def __init__(self) -> None:
        self.steps: dict[str, float] = {}
        self._last = time.perf_counter()

    def lap(self, step: str) -> None:
        now = time.perf_counter()
        self.steps[step] = now - self._last
        self._last = now


def order_body(merchant_id: str, index: int) -> dict[str, Any]:
    """The body tests/support/shop.py places (the tests are not a package this one may import)."""
    return {
        "customer_id": f"bench-c-{index}",
        "merchant_id": merchant_id,
        "items": [
            {
                "sku_id": "sku-clean-2h",
                "name": "Home cleaning, 2h",
                "category_id": "home",
                "unit_price_minor": 8800,
                "quantity": 1,
            }
        ],
        "delivery_fee_minor": 200,
        "currency": "CNY",
    }


class Shopper:
    """Plays the platform app (service key), the merchants and the customers for any number of orders."""

    def __init__(
        self,
        api: httpx.AsyncClient,
        outside: httpx.AsyncClient,
        temporal: Client,
        service_key: str,
        merchants: list[Merchant],
    ) -> None:
        self.api = api
        self.outside = outside
        self.temporal = temporal
        self.service = {"Authorization": f"Bearer {service_key}"}
        self.merchants = merchants

    async def lifecycle(self, index: int) -> Lifecycle:
        merchant = self.merchants[index % len(self.merchants)]
        laps = Laps()
        r = await self.api.post(
            "/v1/orders",
            json=order_body(merchant.merchant_id, index),
            headers={**self.service, "Idempotency-Key": uuid.uuid4().hex},
        )
        laps.lap("create")
        placed = _expect(r, 201, "placing an order")
        order_no, payment = placed["order_no"], placed["payment"]

        _expect(await self.outside.post(payment["pay_url"]), 200, f"paying {payment['payment_no']}")
        laps.lap("pay")
        await self._reaches(order_no, lambda o: o["status"] == "AWAITING_MERCHANT", "AWAITING_MERCHANT")
        laps.lap("paid")

        merchant_auth = {"Authorization": f"Bearer {merchant.key}"}
        accepted = _expect(await self.api.post(f"/v1/orders/{order_no}/accept", headers=merchant_auth), 200, "accept")
        provider = accepted.get("provider_id") if accepted.get("status") == "DISPATCHING" else None
        if not provider:  # the update answers once the dispatch is recorded; read it back only if it did not say
            order = await self._reaches(
                order_no, lambda o: o["status"] == "DISPATCHING" and bool(o["provider_id"]), "DISPATCHING"
            )
            provider = order["provider_id"]
        laps.lap("accept")

        for event in ("provider_accepted", "arrived", "delivered"):
            r = await self.api.post(
                f"/v1/orders/{order_no}/fulfilment-events",
                headers=self.service,
                json={"event": event, "provider_id": provider},
            )
            _expect(r, 200, f"{event} on {order_no}")
            laps.lap(event)
        confirmed = _expect(await self.api.post(f"/v1/orders/{order_no}/confirm", headers=self.service), 200, "confirm")
        if confirmed["status"] != "COMPLETED":
            raise LifecycleError(f"order {order_no} is {confirmed['status']} after confirmation, not COMPLETED")
        laps.lap("confirm")

        # Settleable comes after the after-sale window: wait on the flow's end (a long poll on Temporal,
        # which costs nothing while it waits) rather than polling the API, then check what the API shows.
        await asyncio.wait_for(self.temporal.get_workflow_handle(order_workflow_id(order_no)).result(), STEP_TIMEOUT_S)
        order = await self._order(order_no)
        if not order["settleable"]:
            raise LifecycleError(f"order {order_no} finished its flow but is not settleable: {order}")
        laps.lap("settleable")
        return Lifecycle(order_no, payment["payment_no"], laps.steps)

    async def _order(self, order_no: str) -> dict[str, Any]:
        return _expect(await self.api.get(f"/v1/orders/{order_no}", headers=self.service), 200, f"reading {order_no}")

    async def _reaches(self, order_no: str, wanted: Callable[[dict[str, Any]], bool], what: str) -> dict[str, Any]:
        deadline = time.monotonic() + STEP_TIMEOUT_S
        delay = POLL_FIRST_S
        while True:
            order = await self._order(order_no)
            if wanted(order):
                return order
            if order["status"] == "CANCELLED" or time.monotonic() > deadline:
                raise LifecycleError(f"order {order_no} did not reach {what}: {order['status']} ({order})")
            await asyncio.sleep(delay)
            delay = min(delay * 2, POLL_MAX_S)


def _expect(r: httpx.Response, status: int, what: str) -> dict[str, Any]:
    if r.status_code != status:
        raise LifecycleError(f"{what}: HTTP {r.status_code} (expected {status}): {r.text[:500]}")
    body: dict[str, Any] = r.json()
    return body
