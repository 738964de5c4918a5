"""Service providers: registering them (numbers encrypted), reading them (numbers masked), and the
dispatch claim: which provider is offered an order, and letting them go again."""

from __future__ import annotations

import secrets

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from db.models import ServiceProvider
from domain.crypto import FieldCipher
from domain.merchants import last4, masked
from domain.providers import ProviderRegistration, ProviderView


async def register(
    session: AsyncSession,
    reg: ProviderRegistration,
    merchant_id: str | None,
    cipher: FieldCipher | None,
    *,
    provider_id: str | None = None,
    online: bool = False,
) -> str:
    """Store a provider; the clear phone and identity numbers never reach the database."""
    if (reg.phone or reg.id_no) and cipher is None:
        raise ValueError("a provider's phone or identity number is stored only encrypted")
    provider_id = provider_id or f"pv-{secrets.token_hex(6)}"
    session.add(
        ServiceProvider(
            id=provider_id,
            name=reg.name,
            merchant_id=merchant_id,
            categories=list(reg.categories),
            active=True,
            online=online,
            phone_enc=cipher.encrypt(reg.phone) if cipher and reg.phone else None,
            phone_last4=last4(reg.phone) if reg.phone else None,
            id_no_enc=cipher.encrypt(reg.id_no) if cipher and reg.id_no else None,
            id_no_last4=last4(reg.id_no) if reg.id_no else None,
        )
    )
    await session.flush()
    return provider_id


def view(p: ServiceProvider) -> ProviderView:
    return ProviderView(
        provider_id=p.id,
        name=p.name,
        merchant_id=p.merchant_id,
        categories=list(p.categories),
        online=p.online,
        busy=p.current_order_no is not None,
        phone=masked(p.phone_last4) if p.phone_last4 else None,
        id_no=masked(p.id_no_last4) if p.id_no_last4 else None,
    )


async def listed(
    session: AsyncSession, *, merchant_id: str | None, pool: bool, online: bool | None, limit: int
) -> list[ProviderView]:
    query = select(ServiceProvider).where(ServiceProvider.active.is_(True))
    if merchant_id is not None:
        query = query.where(ServiceProvider.merchant_id == merchant_id)
    elif pool:
        query = query.where(ServiceProvider.merchant_id.is_(None))
    if online is not None:
        query = query.where(ServiceProvider.online.is_(online))
    query = query.order_by(ServiceProvider.created_at, ServiceProvider.id).limit(limit)
    rows = (await session.execute(query)).scalars()
    return [view(p) for p in rows]


async def set_online(session: AsyncSession, provider_id: str, online: bool) -> None:
    await session.execute(update(ServiceProvider).where(ServiceProvider.id == provider_id).values(online=online))
