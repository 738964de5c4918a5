"""Service providers: a merchant registers its own staff, the platform (service role) its pool; either
takes its providers on- and offline. Dispatch itself is the order flow's job (db/providers.py)."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Path, Query

from api.deps import SessionDep, SessionFactoryDep, SettingsDep, require
from api.errors import ApiError
from api.idempotency import IdempotencyDep
from api.params import MerchantFilter
from db import providers as repo
from db.api_keys import Principal
from db.audit import record
from db.engine import unit_of_work
from db.models import ServiceProvider
from domain.access import Role
from domain.crypto import FieldCipher
from domain.ids import CODE_ID_PATTERN
from domain.providers import Availability, ProviderRegistration, ProviderView, may_manage, owner
from domain.refusals import Refusal

router = APIRouter(prefix="/v1/providers", tags=["providers"])
Manager = Annotated[Principal, Depends(require(Role.MERCHANT, Role.SERVICE))]
Reader = Annotated[Principal, Depends(require(Role.MERCHANT, Role.SERVICE, Role.OPERATOR))]
ProviderId = Annotated[str, Path(min_length=1, max_length=64, pattern=CODE_ID_PATTERN, description="a provider id")]


@router.post("", status_code=201, response_model=ProviderView, summary="Register a service provider")
async def register(
    body: ProviderRegistration, who: Manager, idem: IdempotencyDep, factory: SessionFactoryDep, settings: SettingsDep
) -> Any:
    merchant_id = owner(who.role, who.merchant_id, body.merchant_id)

    async def create() -> ProviderView:
        # From the key's claim: a retry after the provider was stored but before the answer finds it.
        provider_id = f"pv-{idem.number.lower()}"
        async with unit_of_work(factory) as session:
            stored = await session.get(ServiceProvider, provider_id)
            if stored is None:
                cipher = FieldCipher(settings.field_encryption_key)
                await repo.register(session, body, merchant_id, cipher, provider_id=provider_id)
                await record(
                    session,
                    who,
                    "provider.registered",
                    "provider",
                    provider_id,
                    merchant_id=merchant_id,
                    categories=list(body.categories),
                )
                stored = await session.get(ServiceProvider, provider_id)
            assert stored is not None
            return repo.view(stored)

    return await idem.run(201, create)


@router.get("", response_model=list[ProviderView], summary="Providers, by merchant (or the pool) and online")
async def list_providers(
    who: Reader,
    session: SessionDep,
    merchant_id: MerchantFilter = None,
    online: bool | None = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
) -> Any:
    if who.role is Role.MERCHANT:
        if merchant_id is not None and merchant_id != who.merchant_id:
            raise ApiError(Refusal.NOT_FOUND, "not found among this API key's merchant's resources")
        merchant_id = who.merchant_id
    # The service role without a merchant filter reads its own pool; the operator reads everyone.
    pool = who.role is Role.SERVICE and merchant_id is None
    return await repo.listed(session, merchant_id=merchant_id, pool=pool, online=online, limit=limit)


@router.post("/{provider_id}/availability", response_model=ProviderView, summary="Go online or offline")
async def set_availability(provider_id: ProviderId, body: Availability, who: Manager, session: SessionDep) -> Any:
    provider = await session.get(ServiceProvider, provider_id, with_for_update=True)
    if provider is None or not may_manage(who.role, who.merchant_id, provider.merchant_id):
        # Another merchant's provider is as unknown as one that does not exist.
        raise ApiError(Refusal.PROVIDER_NOT_FOUND, f"provider {provider_id} does not exist")
    if provider.online is not body.online:
        await repo.set_online(session, provider_id, body.online)
        await record(session, who, "provider.availability", "provider", provider_id, online=body.online)
        await session.refresh(provider)
    return repo.view(provider)
