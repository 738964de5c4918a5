"""Demo and test data: an active merchant with its ledger accounts, service providers, stock.

Until merchant onboarding exists, this is how a merchant becomes ACTIVE; afterwards it stays as a
demo-data tool (`ops demo merchant`, `ops demo providers`)."""

from __future__ import annotations

import secrets

from sqlalchemy import func
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from db.ledger import open_accounts, post
from db.models import Merchant, Order, ServiceProvider, SkuStock
from domain.ledger import merchant_accounts, payment_captured


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


async def seed_settleable_orders(
    session: AsyncSession,
    merchant_id: str,
    count: int,
    *,
    amount_minor: int,
    commission_bps: int = 500,
    promoter_id: str | None = None,
    promoter_bps: int = 0,
    channel: str = "wechat",
    prefix: str = "SEED",
) -> list[str]:
    """Completed orders past their after-sale window, with the money captured into escrow (one posting for
    the batch): what a settlement cycle finds after a day of trade, without living through each order."""
    tag = secrets.token_hex(4).upper()
    order_nos = [f"{prefix}{tag}{i:07d}" for i in range(count)]
    rows = [
        {
            "order_no": no,
            "customer_id": "c-seed",
            "merchant_id": merchant_id,
            "currency": "CNY",
            "goods_minor": amount_minor,
            "delivery_fee_minor": 0,
            "discount_minor": 0,
            "payable_minor": amount_minor,
            "paid_minor": amount_minor,
            "refunded_minor": 0,
            "status": "COMPLETED",
            "payment_no": f"PAY{no}",
            "dispatch_attempts": 1,
            "refund_required_minor": 0,
            "settleable": True,
            "settleable_at": func.now(),
            "settled": False,
            "promoter_id": promoter_id,
            "promoter_bps": promoter_bps if promoter_id else 0,
            "commission_rule_id": "seed",
            "commission_bps": commission_bps,
            "commission_snapshot": {"rule_id": "seed", "rate_bps": commission_bps},
        }
        for no in order_nos
    ]
    for start in range(0, count, 5000):
        await session.execute(insert(Order).values(rows[start : start + 5000]))
    await post(session, payment_captured(f"seed-capture:{tag}", f"seed-{tag}", "CNY", amount_minor * count, channel))
    return order_nos
