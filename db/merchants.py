"""Merchant applications and onboarding for the API: storing application versions (numbers encrypted),
reading what a merchant's onboarding shows (numbers masked). The onboarding flow owns every status."""

from __future__ import annotations

from typing import Any

from sqlalchemy import delete, func, select
from sqlalchemy.ext.asyncio import AsyncSession

from db import settlement_work
from db.models import (
    KycCheckResult,
    Merchant,
    MerchantApplication,
    MerchantCategory,
    MerchantEvent,
    MerchantOnboarding,
    MerchantReview,
    Order,
)
from domain.crypto import FieldCipher
from domain.merchants import Application, Category, MerchantStatus, last4, masked


async def store_application(
    session: AsyncSession, merchant_id: str, version: int, app: Application, cipher: FieldCipher, by: str
) -> None:
    session.add(
        MerchantApplication(
            merchant_id=merchant_id,
            version=version,
            name=app.name,
            category=app.category,
            currency=app.currency,
            contact_name=app.contact_name,
            contact_phone=app.contact_phone,
            business_licence_no=app.business_licence_no,
            legal_person_name=app.legal_person_name,
            legal_person_id_enc=cipher.encrypt(app.legal_person_id_no),
            legal_person_id_last4=last4(app.legal_person_id_no),
            bank_account_name=app.bank_account_name,
            bank_account_enc=cipher.encrypt(app.bank_account_no),
            bank_account_last4=last4(app.bank_account_no),
            bank_name=app.bank_name,
            submitted_by=by,
        )
    )
    await session.flush()


async def next_version(session: AsyncSession, merchant_id: str) -> int:
    latest = (
        await session.execute(
            select(func.max(MerchantApplication.version)).where(MerchantApplication.merchant_id == merchant_id)
        )
    ).scalar_one()
    return int(latest or 0) + 1


async def drop_application(session: AsyncSession, merchant_id: str, version: int) -> None:
    """Forget a resubmission the flow refused, so a refused request leaves nothing behind."""
    await session.execute(
        delete(MerchantApplication).where(
            MerchantApplication.merchant_id == merchant_id, MerchantApplication.version == version
        )
    )


def category_view(c: MerchantCategory) -> dict[str, Any]:
    return Category(
        code=c.code, name=c.name, risk_level=c.risk_level, deposit_minor=c.deposit_minor, currency=c.currency
    ).model_dump()


async def categories(session: AsyncSession) -> list[dict[str, Any]]:
    rows = (await session.execute(select(MerchantCategory).order_by(MerchantCategory.code))).scalars()
    return [category_view(c) for c in rows]


async def put_category(session: AsyncSession, c: Category) -> dict[str, Any]:
    row = await session.get(MerchantCategory, c.code, with_for_update=True)
    if row is None:
        row = MerchantCategory(code=c.code)
        session.add(row)
    row.name, row.risk_level, row.deposit_minor, row.currency = c.name, c.risk_level.value, c.deposit_minor, c.currency
    await session.flush()
    return category_view(row)


def _application(a: MerchantApplication) -> dict[str, Any]:
    return {
        "version": a.version,
        "name": a.name,
        "category": a.category,
        "currency": a.currency,
        "contact_name": a.contact_name,
        "contact_phone": a.contact_phone,
        "business_licence_no": a.business_licence_no,
        "legal_person_name": a.legal_person_name,
        "legal_person_id_no": masked(a.legal_person_id_last4),
        "bank_account_name": a.bank_account_name,
        "bank_account_no": masked(a.bank_account_last4),
        "bank_name": a.bank_name,
        "submitted_at": a.created_at,
    }


async def merchant_view(session: AsyncSession, merchant_id: str) -> dict[str, Any] | None:
    merchant = await session.get(Merchant, merchant_id)
    if merchant is None:
        return None
    state = await session.get(MerchantOnboarding, merchant_id)
    apps = (
        await session.execute(
            select(MerchantApplication)
            .where(MerchantApplication.merchant_id == merchant_id)
            .order_by(MerchantApplication.version)
        )
    ).scalars()
    checks = (
        await session.execute(
            select(KycCheckResult).where(KycCheckResult.merchant_id == merchant_id).order_by(KycCheckResult.id)
        )
    ).scalars()
    reviews = (
        await session.execute(
            select(MerchantReview).where(MerchantReview.merchant_id == merchant_id).order_by(MerchantReview.id)
        )
    ).scalars()
    events = (
        await session.execute(
            select(MerchantEvent).where(MerchantEvent.merchant_id == merchant_id).order_by(MerchantEvent.id)
        )
    ).scalars()
    status = merchant.status
    contract = deposit = None
    if state is not None and status == MerchantStatus.CONTRACTING.value and state.contract_id:
        contract = {"contract_id": state.contract_id, "sign_url": state.sign_url, "signed": state.contract_signed}
    if state is not None and status == MerchantStatus.AWAITING_DEPOSIT.value and state.deposit_payment_no:
        deposit = {
            "payment_no": state.deposit_payment_no,
            "amount_minor": state.deposit_minor,
            "pay_url": state.deposit_pay_url,
        }
    return {
        "merchant_id": merchant.id,
        "name": merchant.name,
        "category": merchant.category,
        "currency": merchant.currency,
        "status": status,
        "risk_level": state.risk_level if state else None,
        "deposit_required_minor": state.deposit_minor if state else 0,
        "application_version": state.application_version if state else None,
        "reason": state.reason if state else None,
        "contract": contract,
        "deposit": deposit,
        "applications": [_application(a) for a in apps],
        "kyc_checks": [
            {"version": c.version, "check": c.kind, "status": c.status, "findings": c.findings, "at": c.at}
            for c in checks
        ],
        "reviews": [
            {
                "stage": r.stage,
                "decision": r.decision,
                "reason": r.reason,
                "auditor": r.auditor,
                "application_version": r.application_version,
                "at": r.at,
            }
            for r in reviews
        ],
        "timeline": [
            {"event": e.event, "status_from": e.status_from, "status_to": e.status_to, "cause": e.cause, "at": e.at}
            for e in events
        ],
    }


async def unsettled_minor(session: AsyncSession, merchant_id: str) -> int:
    """Paid, not refunded, not yet settled: still in escrow, on its way to this merchant."""
    unsettled = (
        await session.execute(
            select(func.coalesce(func.sum(Order.paid_minor - Order.refunded_minor), 0)).where(
                Order.merchant_id == merchant_id, ~settlement_work.settled(), Order.status != "CANCELLED"
            )
        )
    ).scalar_one()
    return int(unsettled)
