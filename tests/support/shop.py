"""A test's view of the platform: the platform app, a merchant, a customer and the outside world."""

from __future__ import annotations

import os
import uuid
from pathlib import Path
from typing import Any

import httpx
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from temporalio.api.sdk.v1 import WorkflowMetadata
from temporalio.client import Client
from temporalio.service import RPCError, RPCStatusCode

from db import demo, ledger
from db.api_keys import issue_key
from db.engine import unit_of_work
from db.models import JournalEntry, SkuStock
from domain.access import Role
from tests.support.sandbox_receiver import eventually
from tests.support.stack import Services
from workflows.search_attributes import BO_STAGE


def bearer(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


def refused_with(r: httpx.Response, status: int, code: str) -> dict[str, Any]:
    """Assert the API refused with exactly this status and refusal code (problem+json); answer the body."""
    assert r.headers["content-type"].startswith("application/problem+json"), r.text
    body: dict[str, Any] = r.json()
    assert (r.status_code, body.get("code")) == (status, code), r.text
    return body


async def held_of(sandbox: httpx.AsyncClient, payments: set[str]) -> dict[tuple[str, str, str], int]:
    """What the sandbox's channels hold of each of these payments: (payment_no, channel, currency) → paid to
    the channel less refunded by it (db/ledger_checks.py: payment_channel_disagreements)."""
    held: dict[tuple[str, str, str], int] = {}
    ordered = sorted(payments)
    for i in range(0, len(ordered), 100):  # the numbers travel in the query string
        r = await sandbox.get("/_sandbox/holdings", params={"payment_no": ordered[i : i + 100]})
        assert r.status_code == 200, r.text
        held.update({(h["payment_no"], h["channel"], h["currency"]): int(h["held_minor"]) for h in r.json()})
    return held


def order_body(merchant_id: str, **overrides: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "customer_id": "c-1",
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
    body.update(overrides)
    return body


class Shop:
    def __init__(
        self,
        api: httpx.AsyncClient,
        keys: dict[Role, str],
        sessions: async_sessionmaker[AsyncSession],
        services: Services,
    ) -> None:
        self.api = api
        self.keys = keys
        self.sessions = sessions
        self.services = services
        self.outside = httpx.AsyncClient(base_url=services.sandbox_url, timeout=30)
        self.merchant_keys: dict[str, str] = {}

    def as_(self, role: Role) -> dict[str, str]:
        return bearer(self.keys[role])

    async def merchant(self, **kwargs: Any) -> str:
        async with unit_of_work(self.sessions) as session:
            merchant_id = await demo.create_active_merchant(session, **kwargs)
            _, self.merchant_keys[merchant_id] = await issue_key(
                session, role=Role.MERCHANT, name=merchant_id, merchant_id=merchant_id, person=f"owner-{merchant_id}"
            )
        return merchant_id

    async def place(self, merchant_id: str, *, key: str | None = None, **overrides: Any) -> httpx.Response:
        headers = {**self.as_(Role.SERVICE), "Idempotency-Key": key or uuid.uuid4().hex}
        return await self.api.post("/v1/orders", json=order_body(merchant_id, **overrides), headers=headers)

    async def placed(self, merchant_id: str, **overrides: Any) -> dict[str, Any]:
        r = await self.place(merchant_id, **overrides)
        assert r.status_code == 201, r.text
        body: dict[str, Any] = r.json()
        return body

    async def pay(self, pay_url: str) -> httpx.Response:
        return await self.outside.post(pay_url)

    async def order(self, order_no: str) -> dict[str, Any]:
        r = await self.api.get(f"/v1/orders/{order_no}", headers=self.as_(Role.OPERATOR))
        assert r.status_code == 200, r.text
        body: dict[str, Any] = r.json()
        return body

    async def reaches(self, order_no: str, status: str, within: float = 20, **fields: Any) -> dict[str, Any]:
        async def check() -> dict[str, Any] | None:
            o = await self.order(order_no)
            return o if o["status"] == status and all(o[k] == v for k, v in fields.items()) else None

        result: dict[str, Any] = await eventually(check, within)
        return result

    async def offered_provider(self, order_no: str, *, other_than: str | None = None, within: float = 20) -> str:
        """The provider the flow has offered the order to (waits for the dispatch)."""

        async def check() -> str | None:
            o = await self.order(order_no)
            p = o["provider_id"] if o["status"] == "DISPATCHING" else None
            return p if p and p != other_than else None

        provider: str = await eventually(check, within)
        return provider

    async def accept(self, order: dict[str, Any]) -> httpx.Response:
        return await self.api.post(
            f"/v1/orders/{order['order_no']}/accept", headers=bearer(self.merchant_keys[order["merchant_id"]])
        )

    async def fulfil(self, order_no: str, event: str, provider_id: str) -> httpx.Response:
        return await self.api.post(
            f"/v1/orders/{order_no}/fulfilment-events",
            headers=self.as_(Role.SERVICE),
            json={"event": event, "provider_id": provider_id},
        )

    async def delivered(self, merchant_id: str, **overrides: Any) -> dict[str, Any]:
        """An order placed (with `overrides`), paid through its channel, accepted and delivered: the
        order's view, now waiting for the customer's confirmation."""
        placed = await self.placed(merchant_id, **overrides)
        assert (await self.pay(placed["payment"]["pay_url"])).status_code == 200
        order = await self.reaches(placed["order_no"], "AWAITING_MERCHANT")
        assert (await self.accept(order)).status_code == 200
        provider = await self.offered_provider(order["order_no"])
        for event in ("provider_accepted", "delivered"):
            r = await self.fulfil(order["order_no"], event, provider)
            assert r.status_code == 200, r.text
        return await self.order(order["order_no"])

    async def stock(self, merchant_id: str, sku_id: str, available: int) -> None:
        async with unit_of_work(self.sessions) as session:
            await demo.set_stock(session, merchant_id, sku_id, available)

    async def available(self, merchant_id: str, sku_id: str) -> int:
        async with unit_of_work(self.sessions) as session:
            row = await session.get(SkuStock, sku_id)
            assert row is not None and row.merchant_id == merchant_id
            return row.available

    async def refunded(self, order_no: str, amount: int, within: float = 20) -> dict[str, Any]:
        """Waits until `amount` has come back to the customer, then checks the channel and the ledger agree."""

        async def check() -> dict[str, Any] | None:
            o = await self.order(order_no)
            return o if o["refunded_minor"] == amount else None

        order: dict[str, Any] = await eventually(check, within)
        done = [r for r in order["refunds"] if r["status"] in ("SUCCEEDED", "MANUAL_PAID")]
        assert sum(r["amount_minor"] for r in done) == amount, order["refunds"]
        for r in done:
            code = "REFUND_BEFORE_SETTLEMENT" if r["status"] == "SUCCEEDED" else "MANUAL_REFUND_PAID"
            assert await self.ledger_entries(r["refund_no"], code) == 1
        return order

    async def request_refund(
        self,
        order_no: str,
        amount: int,
        *,
        key: str | None = None,
        role: Role = Role.SERVICE,
        as_key: str | None = None,
        reason: str = "not satisfied",
    ) -> httpx.Response:
        headers = {**(bearer(as_key) if as_key else self.as_(role)), "Idempotency-Key": key or uuid.uuid4().hex}
        return await self.api.post(
            f"/v1/orders/{order_no}/refunds", json={"amount_minor": amount, "reason": reason}, headers=headers
        )

    async def refund(self, refund_no: str) -> dict[str, Any]:
        r = await self.api.get(f"/v1/refunds/{refund_no}", headers=self.as_(Role.FINANCE))
        assert r.status_code == 200, r.text
        body: dict[str, Any] = r.json()
        return body

    async def channel_refunds(self, channel: str, payment_no: str) -> list[dict[str, Any]]:
        r = await self.outside.get(f"/_sandbox/{channel}/refunds", params={"out_trade_no": payment_no})
        assert r.status_code == 200, r.text
        body: list[dict[str, Any]] = r.json()
        return body

    async def faults(self, party: str, **knobs: Any) -> None:
        r = await self.outside.put(f"/_sandbox/faults/{party}", json=knobs)
        assert r.status_code == 200, r.text

    async def reset_faults(self) -> None:
        for party in ("wechat", "alipay"):
            await self.outside.delete(f"/_sandbox/faults/{party}")

    async def callback_delivered(self, ref: str, within: float = 20) -> dict[str, Any]:
        """Wait until the sandbox recorded that the platform accepted its callback about `ref` (a payment,
        refund or payout number): the party's own record that the callback arrived, and when."""

        async def check() -> dict[str, Any] | None:
            notes = (await self.outside.get("/_sandbox/notifications", params={"ref": ref})).json()
            return next((n for n in notes if n["delivered_at"]), None)

        found: dict[str, Any] = await eventually(check, within)
        return found

    async def channel_order(self, channel: str, payment_no: str) -> dict[str, Any]:
        r = await self.outside.get(f"/_sandbox/{channel}/orders/{payment_no}")
        assert r.status_code == 200, r.text
        body: dict[str, Any] = r.json()
        return body

    async def ledger_entries(self, reference: str, code: str | None = None) -> int:
        async with unit_of_work(self.sessions) as session:
            q = select(func.count()).select_from(JournalEntry).where(JournalEntry.reference == reference)
            if code:
                q = q.where(JournalEntry.tx_code == code)
            return int((await session.execute(q)).scalar_one())

    async def balance(self, account: str, currency: str = "CNY") -> int:
        async with unit_of_work(self.sessions) as session:
            return await ledger.balance_of(session, account, currency)


async def stage_of(temporal: Client, workflow_id: str, expected: str, within: float = 10) -> str:
    """Waits until an operator would see the flow at stage `expected` (BoStage, as the UI filters on it)
    and returns its current details as the UI shows them."""

    async def check() -> str | None:
        try:
            desc = await temporal.get_workflow_handle(workflow_id).describe()
        except RPCError as exc:
            if exc.status is RPCStatusCode.NOT_FOUND:
                return None  # not started yet
            raise
        if desc.typed_search_attributes.get(BO_STAGE) != expected:
            return None
        return await _details(temporal, workflow_id) or " "

    details: str = await eventually(check, within)
    return details


async def _details(temporal: Client, workflow_id: str) -> str:
    # The same built-in query the Web UI uses to show a flow's current details.
    meta = await temporal.get_workflow_handle(workflow_id).query(
        "__temporal_workflow_metadata", result_type=WorkflowMetadata
    )
    return str(meta.current_details)


# --- merchant onboarding ------------------------------------------------------------------------
def application_body(**overrides: Any) -> dict[str, Any]:
    """A merchant application with fresh identity and bank numbers (so a test can look for them)."""
    digits = "".join(str(uuid.uuid4().int)[:17])
    body: dict[str, Any] = {
        "name": "Noodle House",
        "category": "food",
        "contact_name": "Li Lei",
        "contact_phone": "+86 138 0000 0000",
        "business_licence_no": "91310000MA1FL8XQ3A",
        "legal_person_name": "Li Lei",
        "legal_person_id_no": digits + "X",
        "bank_account_name": "Noodle House Ltd",
        "bank_account_no": "6222" + str(uuid.uuid4().int)[:15],
        "bank_name": "ICBC Shanghai",
    }
    body.update(overrides)
    return body


async def apply_merchant(shop: Shop, **overrides: Any) -> tuple[str, dict[str, Any]]:
    body = application_body(**overrides)
    r = await shop.api.post(
        "/v1/merchants", json=body, headers={**shop.as_(Role.SERVICE), "Idempotency-Key": uuid.uuid4().hex}
    )
    assert r.status_code == 201, r.text
    assert r.json()["status"] == "SUBMITTED"
    return str(r.json()["merchant_id"]), body


async def onboarding(shop: Shop, merchant_id: str) -> dict[str, Any]:
    r = await shop.api.get(f"/v1/merchants/{merchant_id}", headers=shop.as_(Role.OPERATOR))
    assert r.status_code == 200, r.text
    body: dict[str, Any] = r.json()
    return body


async def onboarding_reaches(shop: Shop, merchant_id: str, status: str, within: float = 20) -> dict[str, Any]:
    async def check() -> dict[str, Any] | None:
        m = await onboarding(shop, merchant_id)
        ready = m["status"] == status
        if status == "CONTRACTING":
            ready = ready and m["contract"] is not None
        return m if ready else None

    found: dict[str, Any] = await eventually(check, within)
    return found


async def review_merchant(
    shop: Shop, merchant_id: str, decision: str, key: str, reason: str = "checked the documents"
) -> httpx.Response:
    return await shop.api.post(
        f"/v1/merchants/{merchant_id}/review", json={"decision": decision, "reason": reason}, headers=bearer(key)
    )


# --- withdrawals ----------------------------------------------------------------------------------
async def payee(shop: Shop, funds: int, **kwargs: Any) -> str:
    """An ACTIVE merchant with a KYC-verified settlement account and `funds` available to withdraw."""
    from db.demo import fund_merchant, record_verified_bank_account
    from domain.crypto import FieldCipher
    from domain.settings import Settings

    merchant_id = await shop.merchant(**kwargs)
    async with unit_of_work(shop.sessions) as session:
        await record_verified_bank_account(session, merchant_id, FieldCipher(Settings().field_encryption_key))
        if funds:
            await fund_merchant(session, merchant_id, funds)
    return merchant_id


async def withdraw(
    shop: Shop, merchant_id: str, amount: int, *, key: str | None = None, as_key: str | None = None
) -> httpx.Response:
    headers = {**bearer(as_key or shop.merchant_keys[merchant_id]), "Idempotency-Key": key or uuid.uuid4().hex}
    url = f"/v1/merchants/{merchant_id}/withdrawals"
    return await shop.api.post(url, json={"amount_minor": amount}, headers=headers)


async def second_finance_person(shop: Shop) -> str:
    """A finance key of a person other than the test's own finance key: the checker of a maker-checker."""
    from db.api_keys import issue_key

    name = f"checker-{uuid.uuid4().hex[:6]}"
    async with unit_of_work(shop.sessions) as session:
        _, key = await issue_key(session, role=Role.FINANCE, name=name, person=name)
    return key


async def resolve_payout(
    shop: Shop, withdrawal_id: str, body: dict[str, Any], maker: str, checker: str
) -> httpx.Response:
    """Finance resolves an UNKNOWN payout: `maker` proposes, `checker` (another person) confirms."""
    url = f"/v1/withdrawals/{withdrawal_id}/resolve"
    proposed = await shop.api.post(url, json=body, headers=bearer(maker))
    assert proposed.status_code == 200 and proposed.json()["status"] == "UNKNOWN", proposed.text
    assert proposed.json()["resolution_proposed"] == body["outcome"], proposed.text
    return await shop.api.post(url, json=body, headers=bearer(checker))


async def withdrawal(shop: Shop, withdrawal_id: str) -> dict[str, Any]:
    r = await shop.api.get(f"/v1/withdrawals/{withdrawal_id}", headers=shop.as_(Role.FINANCE))
    assert r.status_code == 200, r.text
    body: dict[str, Any] = r.json()
    return body


async def withdrawal_reaches(shop: Shop, withdrawal_id: str, status: str, within: float = 20) -> dict[str, Any]:
    async def check() -> dict[str, Any] | None:
        w = await withdrawal(shop, withdrawal_id)
        return w if w["status"] == status else None

    found: dict[str, Any] = await eventually(check, within)
    return found


HISTORIES = Path(__file__).resolve().parent.parent / "histories"


async def record_history(temporal: Client, workflow_id: str, name: str) -> None:
    """With BACKOFFICE_RECORD_HISTORIES=1, keep a finished flow's history for tests/unit/test_replay.py."""
    if os.environ.get("BACKOFFICE_RECORD_HISTORIES") == "1":
        history = await temporal.get_workflow_handle(workflow_id).fetch_history()
        (HISTORIES / f"{name}.json").write_text(history.to_json())
