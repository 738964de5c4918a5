"""A merchant's money as the ledger holds it."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends

from api.deps import SessionDep, ensure_merchant_scope, require
from api.errors import ApiError
from api.params import MerchantId
from api.schemas.merchants import Balance
from db import ledger
from db.api_keys import Principal
from db.merchants import unsettled_minor
from db.models import Merchant
from domain.access import Role
from domain.accounts import merchant_account
from domain.refusals import Refusal

router = APIRouter(tags=["merchants"])


@router.get(
    "/v1/merchants/{merchant_id}/balance",
    response_model=Balance,
    summary="Available (after clawbacks), being withdrawn, security deposit, and not yet settled",
)
async def balance(
    merchant_id: MerchantId,
    session: SessionDep,
    who: Annotated[Principal, Depends(require(Role.MERCHANT, Role.FINANCE))],
) -> Balance:
    ensure_merchant_scope(who, merchant_id)
    merchant = await session.get(Merchant, merchant_id)
    if merchant is None:
        raise ApiError(Refusal.MERCHANT_NOT_FOUND, f"merchant {merchant_id} does not exist")
    cur = merchant.currency

    async def of(purpose: str) -> int:
        return await ledger.balance_of(session, merchant_account(merchant_id, purpose), cur)

    return Balance(
        merchant_id=merchant_id,
        currency=cur,
        # A clawback beyond the available balance is a debt: it shows here as a negative balance.
        available_minor=await of("available") + await of("clawback"),
        withdrawing_minor=await of("withdrawing"),
        deposit_minor=await of("deposit"),
        unsettled_minor=await unsettled_minor(session, merchant_id),
    )
