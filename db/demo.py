"""Demo and test data: an active merchant with its ledger accounts, service providers, stock.

Until merchant onboarding exists, this is how a merchant becomes ACTIVE; afterwards it stays as a
demo-data tool (`ops demo merchant`, `ops demo providers`)."""

from __future__ import annotations

import secrets

from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from db.ledger import open_accounts
from db.models import Merchant, ServiceProvider, SkuStock
from domain.ledger import merchant_accounts


async def create_active_merchant(
    session: AsyncSession,
    *,
    name: str = "Demo merchant",
    category: str = "food",
    currency: str = "CNY",
    merchant_id: str | None = None,
    status: str = "ACTIVE",
) -> str:
    merchant_id = merchant_id or f"m-{secrets.token_hex(5)}"
    session.add(Merchant(id=merchant_id, name=name, category=category, currency=currency, status=status))
    await session.flush()
    await open_accounts(session, merchant_accounts(merchant_id), currency)
    return merchant_id


async def seed_providers(session: AsyncSession, count: int = 5, prefix: str = "prov") -> list[str]:
    ids = [f"{prefix}-{i + 1}" for i in range(count)]
    await session.execute(
        insert(ServiceProvider)
        .values([{"id": pid, "name": f"Provider {pid}", "active": True} for pid in ids])
        .on_conflict_do_nothing(index_elements=["id"])
    )
    return ids


async def set_stock(session: AsyncSession, merchant_id: str, sku_id: str, available: int) -> None:
    await session.execute(
        insert(SkuStock)
        .values(sku_id=sku_id, merchant_id=merchant_id, available=available)
        .on_conflict_do_update(index_elements=["sku_id"], set_={"available": available})
    )
