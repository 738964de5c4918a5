"""Merchant onboarding: applications, resubmissions, review decisions, reading a merchant; categories.

The clear identity and bank numbers stop here: the application is stored encrypted before the flow is
started or asked, and the flow hears only the merchant id and the application version.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends
from sqlalchemy.exc import IntegrityError
from temporalio.client import Client, WorkflowHandle

from api.deps import SessionDep, SessionFactoryDep, SettingsDep, TemporalDep, ensure_merchant_scope, require
from api.errors import ApiError
from api.idempotency import IdempotencyDep
from api.params import CategoryCode, MerchantId
from api.schemas.merchants import MerchantDetail
from db import merchants as repo
from db.api_keys import Principal
from db.audit import record
from db.engine import unit_of_work
from db.models import Merchant, MerchantCategory
from domain import numbers
from domain.access import Role
from domain.crypto import FieldCipher
from domain.merchants import (
    Application,
    Category,
    MerchantView,
    OnboardingInput,
    OnboardingResult,
    Resubmission,
    Reviewer,
    ReviewInput,
    ReviewRequest,
    check_resubmission,
)
from domain.refusals import Refusal, Refused
from workflows.client.asking import call_flow, start_and_ask
from workflows.client.terms import onboarding_terms
from workflows.ids import merchant_onboarding_workflow_id
from workflows.onboarding import MerchantOnboardingWorkflow

router = APIRouter(tags=["merchants"])
Service = Annotated[Principal, Depends(require(Role.SERVICE))]


async def _check_category(session: SessionDep, body: Application) -> None:
    category = await session.get(MerchantCategory, body.category)
    if category is None:
        raise ApiError(Refusal.UNKNOWN_CATEGORY, f"category {body.category!r} does not exist")
    if category.currency != body.currency:
        raise ApiError(Refusal.WRONG_CURRENCY, f"category {body.category!r} takes {category.currency}")


@router.post("/v1/merchants", status_code=201, response_model=MerchantView, summary="Apply; starts onboarding")
async def apply(
    body: Application,
    who: Service,
    idem: IdempotencyDep,
    factory: SessionFactoryDep,
    settings: SettingsDep,
    temporal: TemporalDep,
) -> Any:
    async def start() -> MerchantView:
        # From the key's claim: a retry of the same key applies for the same merchant, whose
        # application may already be stored by the attempt that failed.
        merchant_id = numbers.merchant_id(idem.number)
        async with unit_of_work(factory) as session:
            await _check_category(session, body)
            if await repo.next_version(session, merchant_id) == 1:
                await repo.store_application(
                    session, merchant_id, 1, body, FieldCipher(settings.field_encryption_key), who.actor
                )
        inp = OnboardingInput(merchant_id=merchant_id, terms=onboarding_terms(settings))
        idem.sending()
        return await start_and_ask(
            temporal,
            MerchantOnboardingWorkflow.run,
            inp,
            merchant_onboarding_workflow_id(merchant_id),
            MerchantOnboardingWorkflow.submitted,
            "submitting the application",
        )

    return await idem.run(201, start)


def _flow(temporal: Client, merchant_id: str) -> WorkflowHandle[MerchantOnboardingWorkflow, OnboardingResult]:
    return temporal.get_workflow_handle_for(
        MerchantOnboardingWorkflow.run, merchant_onboarding_workflow_id(merchant_id)
    )


async def _merchant(session: SessionDep, merchant_id: str) -> Merchant:
    merchant = await session.get(Merchant, merchant_id)
    if merchant is None:
        raise ApiError(Refusal.MERCHANT_NOT_FOUND, f"merchant {merchant_id} does not exist")
    return merchant


@router.get(
    "/v1/merchants/{merchant_id}",
    response_model=MerchantDetail,
    summary="Status, applications (masked), KYC, reviews, contract, deposit",
)
async def get_merchant(
    merchant_id: MerchantId,
    session: SessionDep,
    who: Annotated[Principal, Depends(require(Role.SERVICE, Role.AUDITOR, Role.FINANCE, Role.OPERATOR, Role.MERCHANT))],
) -> dict[str, Any]:
    ensure_merchant_scope(who, merchant_id)
    view = await repo.merchant_view(session, merchant_id)
    if view is None:
        raise ApiError(Refusal.MERCHANT_NOT_FOUND, f"merchant {merchant_id} does not exist")
    return view


@router.post("/v1/merchants/{merchant_id}/review", response_model=MerchantView, summary="An auditor decides")
async def review(
    merchant_id: MerchantId,
    body: ReviewRequest,
    factory: SessionFactoryDep,
    temporal: TemporalDep,
    who: Annotated[Principal, Depends(require(Role.AUDITOR))],
) -> MerchantView:
    async with unit_of_work(factory) as session:
        await _merchant(session, merchant_id)
    decision = ReviewInput(
        decision=body.decision,
        reason=body.reason,
        # name is the person: the flow's second-review check then compares people, not keys.
        by=Reviewer(actor=who.actor, name=who.who, key_id=who.key_id, role=who.role.value),
    )
    return await call_flow(
        _flow(temporal, merchant_id).execute_update(MerchantOnboardingWorkflow.review, decision),
        f"{body.decision.value} on merchant {merchant_id}",
    )


@router.post("/v1/merchants/{merchant_id}/resubmit", response_model=MerchantView, summary="Corrected application")
async def resubmit(
    merchant_id: MerchantId,
    body: Application,
    who: Service,
    idem: IdempotencyDep,
    factory: SessionFactoryDep,
    settings: SettingsDep,
    temporal: TemporalDep,
) -> Any:
    async def send() -> MerchantView:
        async with unit_of_work(factory) as session:
            merchant = await _merchant(session, merchant_id)
            check_resubmission(merchant_id, merchant.status, merchant.category, body.category)
            version = await repo.next_version(session, merchant_id)
        try:
            async with unit_of_work(factory) as session:
                cipher = FieldCipher(settings.field_encryption_key)
                await repo.store_application(session, merchant_id, version, body, cipher, who.actor)
        except IntegrityError:
            raise ApiError(Refusal.CONCURRENT_RESUBMISSION, "another resubmission was just stored") from None
        idem.sending()
        try:
            view = await call_flow(
                _flow(temporal, merchant_id).execute_update(
                    MerchantOnboardingWorkflow.resubmit, Resubmission(version=version)
                ),
                f"resubmitting merchant {merchant_id}",
            )
        except Refused:
            async with unit_of_work(factory) as session:
                await repo.drop_application(session, merchant_id, version)
            raise
        return view

    return await idem.run(200, send)


@router.get(
    "/v1/merchant-categories", response_model=list[Category], summary="Categories: risk level and security deposit"
)
async def list_categories(
    session: SessionDep,
    _: Annotated[Principal, Depends(require(Role.SERVICE, Role.AUDITOR, Role.OPERATOR, Role.ADMIN, Role.FINANCE))],
) -> list[dict[str, Any]]:
    return await repo.categories(session)


# Admin only: a category's risk level decides whether a second auditor and a deposit are required.
@router.put(
    "/v1/merchant-categories/{code}",
    response_model=Category,
    summary="Create or change a category (admin; applies to new applications)",
)
async def put_category(
    code: CategoryCode,
    body: Category,
    factory: SessionFactoryDep,
    who: Annotated[Principal, Depends(require(Role.ADMIN))],
) -> dict[str, Any]:
    if body.code != code:
        raise ApiError(Refusal.CODE_MISMATCH, f"body code {body.code!r} differs from the path {code!r}")
    async with unit_of_work(factory) as session:  # change and audit row commit before the answer
        view = await repo.put_category(session, body)
        await record(session, who, "merchant_category.put", "merchant_category", code, **body.model_dump(mode="json"))
    return view
