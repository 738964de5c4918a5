from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query

from api.deps import SettingsDep, TemporalDep, require
from api.schemas.ops import StuckFlow
from db.api_keys import Principal
from domain.access import Role
from workflows.client.stuck import stuck_flows

router = APIRouter(prefix="/v1/ops", tags=["operations"])


@router.get(
    "/stuck",
    response_model=list[StuckFlow],
    summary="Running flows resting in their stage longer than it should last, worst first",
)
async def stuck(
    settings: SettingsDep,
    temporal: TemporalDep,
    _: Annotated[Principal, Depends(require(Role.OPERATOR, Role.ADMIN))],
    limit: int = Query(default=100, ge=1, le=1000),
) -> list[dict[str, Any]]:
    return await stuck_flows(temporal, settings, limit=limit)
