"""The people and apps of the chaos workload: they drive flows through the API and the sandbox and
shrug off a worker that dies under them, as real clients must: a create is retried with the same
Idempotency-Key, and a decision is taken only after reading that it has not been taken already."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import httpx

STEP_TIMEOUT_S = 600.0  # a killed activity is retried only after its timeout: slow, not lost
RETRY_S = 0.5


class ChaosError(RuntimeError):
    """A flow did not reach where it should have: a lost effect, unless the whole run was too slow."""


@dataclass(frozen=True)
class Keys:
    service: str
    finance: str
    auditor: str
    merchants: dict[str, str]


Json = dict[str, Any]


class Actors:
    def __init__(self, api: httpx.AsyncClient, outside: httpx.AsyncClient, keys: Keys) -> None:
        self.api = api
        self.outside = outside
        self.keys = keys
        self.run = uuid.uuid4().hex[:8]

    # --- the two ways a client survives a crash ----------------------------------------------------
    async def create(self, url: str, body: Json, key: str, expect: int, idem: str) -> Json:
        """POST something new, retrying with the same Idempotency-Key until it answers `expect`."""
        headers = {"Authorization": f"Bearer {key}", "Idempotency-Key": f"chaos-{self.run}-{idem}"}
        deadline = time.monotonic() + STEP_TIMEOUT_S
        last = ""
        while time.monotonic() < deadline:
            try:
                r = await self.api.post(url, json=body, headers=headers)
                if r.status_code == expect:
                    answer: Json = r.json()
                    return answer
                if r.status_code < 500 and r.status_code not in (409, 429):
                    raise ChaosError(f"POST {url}: {r.status_code} {r.text[:300]}")
                last = f"{r.status_code} {r.text[:200]}"
            except httpx.TransportError as exc:
                last = type(exc).__name__
            await asyncio.sleep(RETRY_S)
        raise ChaosError(f"POST {url} never answered {expect}: {last}")

    async def until(
        self,
        what: str,
        read: Callable[[], Awaitable[Json]],
        done: Callable[[Json], bool],
        act: Callable[[], Awaitable[object]] | None = None,
    ) -> Json:
        """Read; if not done yet, act (any failure is fine: the next read tells); again until done."""
        deadline = time.monotonic() + STEP_TIMEOUT_S
        state: Json = {}
        while time.monotonic() < deadline:
            try:
                state = await read()
                if done(state):
                    return state
                if act is not None:
                    await act()
            except httpx.TransportError:
                pass
            await asyncio.sleep(RETRY_S)
        raise ChaosError(f"{what}: not reached within {STEP_TIMEOUT_S:.0f}s, last seen {str(state)[:400]}")

    async def get(self, url: str, key: str) -> Json:
        r = await self.api.get(url, headers={"Authorization": f"Bearer {key}"})
        if r.status_code != 200:
            raise httpx.TransportError(f"GET {url}: {r.status_code}")  # read again later
        body: Json = r.json()
        return body

    async def post(self, url: str, key: str, body: Json | None = None) -> httpx.Response:
        return await self.api.post(url, json=body, headers={"Authorization": f"Bearer {key}"})

    # --- an order from placement to two after-sale refunds ------------------------------------------
    async def order_with_refunds(self, merchant_id: str, index: int, refunds: tuple[int, ...]) -> Json:
        service, merchant = self.keys.service, self.keys.merchants[merchant_id]
        placed = await self.create("/v1/orders", order_body(merchant_id, index), service, 201, f"order-{index}")
        no = placed["order_no"]

        def read() -> Awaitable[Json]:
            return self.get(f"/v1/orders/{no}", service)

        def past(*statuses: str) -> Callable[[Json], bool]:
            return lambda o: o["status"] in statuses

        later = ("DISPATCHING", "IN_SERVICE", "DELIVERED", "COMPLETED")
        await self.until(
            f"{no} paid",
            read,
            past("AWAITING_MERCHANT", *later),
            lambda: self.outside.post(placed["payment"]["pay_url"]),
        )
        await self.until(f"{no} accepted", read, past(*later), lambda: self.post(f"/v1/orders/{no}/accept", merchant))
        order = await self.until(f"{no} dispatched", read, lambda o: bool(o.get("provider_id")))
        provider = order["provider_id"]
        for event, seen in (
            ("provider_accepted", "provider-accepted"),
            ("arrived", "arrived"),
            ("delivered", "delivered"),
        ):
            await self.until(
                f"{no} {event}",
                read,
                _has_event(seen),
                _sender(self, f"/v1/orders/{no}/fulfilment-events", service, {"event": event, "provider_id": provider}),
            )
        await self.until(
            f"{no} confirmed", read, past("COMPLETED"), lambda: self.post(f"/v1/orders/{no}/confirm", service)
        )
        for n, amount in enumerate(refunds):
            body = {"amount_minor": amount, "reason": f"chaos {n}"}
            r = await self.create(f"/v1/orders/{no}/refunds", body, service, 202, f"refund-{index}-{n}")
            url = f"/v1/refunds/{r['refund_no']}"
            await self.until(
                f"refund {r['refund_no']}", _reader(self, url, service), lambda f: f["status"] == "SUCCEEDED"
            )
        return await self.until(f"{no} settleable", read, lambda o: bool(o["settleable"]))

    # --- a withdrawal to the bank -------------------------------------------------------------------
    async def withdrawal(self, merchant_id: str, amount: int, index: int) -> Json:
        url, key = f"/v1/merchants/{merchant_id}/withdrawals", self.keys.merchants[merchant_id]
        made = await self.create(url, {"amount_minor": amount}, key, 202, f"withdrawal-{index}")
        wid = made["withdrawal_id"]
        return await self.until(
            f"withdrawal {wid}",
            lambda: self.get(f"/v1/withdrawals/{wid}", self.keys.finance),
            lambda w: w["status"] in ("PAID", "FAILED"),
        )

    # --- a merchant from application to ACTIVE --------------------------------------------------------
    async def onboarding(self, index: int) -> Json:
        made = await self.create("/v1/merchants", application_body(index), self.keys.service, 201, f"merchant-{index}")
        mid = made["merchant_id"]

        def read() -> Awaitable[Json]:
            return self.get(f"/v1/merchants/{mid}", self.keys.auditor)

        review = {"decision": "approve", "reason": "documents checked"}
        await self.until(
            f"{mid} reviewed",
            read,
            lambda m: m["status"] not in ("SUBMITTED", "VERIFYING", "IN_REVIEW"),
            lambda: self.post(f"/v1/merchants/{mid}/review", self.keys.auditor, review),
        )

        async def sign() -> object:
            m = await read()
            return await self.outside.post(m["contract"]["sign_url"]) if m.get("contract") else None

        return await self.until(f"{mid} active", read, lambda m: m["status"] == "ACTIVE", sign)

    # --- a settlement cycle ---------------------------------------------------------------------------
    async def settlement_cycle(self, cutoff: str) -> Json:
        """A cycle at a fixed cutoff, so a retried request names the same cycle."""
        run = await self.create("/v1/settlement-runs", {"cutoff": cutoff}, self.keys.finance, 202, "cycle")
        cycle = run["cycle_id"]
        return await self.until(
            f"settlement cycle {cycle}",
            lambda: self.get(f"/v1/settlement-runs/{cycle}", self.keys.finance),
            lambda c: c.get("status") == "CLOSED",
        )


def _has_event(event: str) -> Callable[[Json], bool]:
    return lambda order: event in timeline(order)


def _sender(actors: Actors, url: str, key: str, body: Json) -> Callable[[], Awaitable[object]]:
    return lambda: actors.post(url, key, body)


def _reader(actors: Actors, url: str, key: str) -> Callable[[], Awaitable[Json]]:
    return lambda: actors.get(url, key)


def timeline(order: Json) -> list[str]:
    return [e["event"] for e in order.get("timeline", [])]


def order_body(merchant_id: str, index: int) -> Json:
    return {
        "customer_id": f"chaos-c-{index}",
        "merchant_id": merchant_id,
        "items": [
            {
                "sku_id": "sku-clean-2h",
                "name": "Home cleaning, 2h",
                "category_id": "home",
                "unit_price_minor": 8800 + index,
                "quantity": 1,
            }
        ],
        "delivery_fee_minor": 500,
        "currency": "CNY",
    }


def application_body(index: int) -> Json:
    digits = f"{index:04d}{uuid.uuid4().int % 10**13:013d}"
    return {
        "name": f"Chaos noodles {index}",
        "category": "food",
        "contact_name": "Li Lei",
        "contact_phone": "+86 138 0000 0000",
        "business_licence_no": "91310000MA1FL8XQ3A",
        "legal_person_name": "Li Lei",
        "legal_person_id_no": digits + "X",
        "bank_account_name": f"Chaos noodles {index} Ltd",
        "bank_account_no": "6222" + digits[:15],
        "bank_name": "ICBC Shanghai",
    }
