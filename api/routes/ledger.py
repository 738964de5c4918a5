from typing import Annotated

from fastapi import APIRouter, Depends

from api.deps import SessionDep, require
from api.schemas.ledger import TrialBalance
from db.api_keys import Principal
from db.ledger import trial_balance
from domain.access import Role

router = APIRouter(prefix="/v1/ledger", tags=["ledger"])


@router.get("/trial-balance", response_model=TrialBalance, summary="Ledger totals and every invariant it checks")
async def get_trial_balance(
    session: SessionDep, _: Annotated[Principal, Depends(require(Role.FINANCE, Role.ADMIN))]
) -> TrialBalance:
    return TrialBalance.model_validate(await trial_balance(session))
