"""Commission rules, managed by finance; every change is in the audit log."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends
from sqlalchemy import update

from api.deps import SessionDep, SessionFactoryDep, require
from api.errors import ApiError
from api.idempotency import IdempotencyDep
from api.params import RuleId
from db import settlement as repo
from db.api_keys import Principal
from db.audit import record
from db.engine import unit_of_work
from db.models import CommissionRule
from domain import numbers
from domain.access import Role
from domain.commission import Rule, RuleSpec
from domain.refusals import Refusal

router = APIRouter(prefix="/v1/commission-rules", tags=["commission"])
Finance = Annotated[Principal, Depends(require(Role.FINANCE))]


@router.post("", status_code=201, response_model=Rule, summary="Create a commission rule")
async def create_rule(body: RuleSpec, who: Finance, idem: IdempotencyDep, factory: SessionFactoryDep) -> Any:
    async def create() -> Rule:
        # From the key's claim: a retry after the rule was stored but before the answer was finds it.
        rule_id = numbers.commission_rule_id(idem.number)
        async with unit_of_work(factory) as session:
            stored = await session.get(CommissionRule, rule_id)
            if stored is not None:
                return repo.to_rule(stored)
            row = CommissionRule(id=rule_id, created_by=who.actor, active=True, **body.model_dump())
            session.add(row)
            await session.flush()
            await record(
                session, who, "commission_rule.created", "commission_rule", rule_id, **body.model_dump(mode="json")
            )
            return repo.to_rule(row)

    return await idem.run(201, create)


@router.get("", response_model=list[Rule], summary="Every commission rule, active or not")
async def list_rules(
    session: SessionDep, _: Annotated[Principal, Depends(require(Role.FINANCE, Role.OPERATOR))]
) -> Any:
    return await repo.all_rules(session)


@router.post("/{rule_id}/disable", response_model=Rule, summary="Stop a rule applying to new orders")
async def disable_rule(rule_id: RuleId, who: Finance, session: SessionDep) -> Any:
    row = await session.get(CommissionRule, rule_id, with_for_update=True)
    if row is None:
        raise ApiError(Refusal.RULE_NOT_FOUND, f"commission rule {rule_id} does not exist")
    if row.active:
        await session.execute(update(CommissionRule).where(CommissionRule.id == rule_id).values(active=False))
        await record(session, who, "commission_rule.disabled", "commission_rule", rule_id)
        await session.refresh(row)
    return repo.to_rule(row)
