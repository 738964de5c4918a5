"""Merchant onboarding: the records (one transaction each, idempotent on timeline event names) and the
calls to the KYC and e-sign providers (which read the encrypted application, never write).

Workflow inputs and results carry merchant ids and application versions only: the clear numbers are
decrypted here, inside the activity that sends them to the provider, and go nowhere else.
"""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from temporalio import activity
from temporalio.exceptions import ApplicationError

from activities.parties.errors import PartyError
from activities.parties.esign import ESignClient
from activities.parties.kyc import KycClient
from activities.refusals import party_failure, refuse
from db.api_keys import Principal
from db.audit import record
from db.engine import unit_of_work
from db.ledger import open_accounts
from db.models import (
    KycCheckResult,
    Merchant,
    MerchantApplication,
    MerchantCategory,
    MerchantEvent,
    MerchantOnboarding,
    MerchantReview,
)
from domain.access import Role
from domain.accounts import merchant_accounts
from domain.crypto import FieldCipher
from domain.merchants import (
    Contract,
    ContractRequest,
    KycCheck,
    KycRequest,
    KycResult,
    MerchantStatus,
    OnboardingTransition,
    RiskLevel,
    Terms,
)
from domain.refusals import Refusal


async def application(session: AsyncSession, merchant_id: str, version: int) -> MerchantApplication | None:
    return (
        await session.execute(
            select(MerchantApplication).where(
                MerchantApplication.merchant_id == merchant_id, MerchantApplication.version == version
            )
        )
    ).scalar_one_or_none()


async def _add_event(session: AsyncSession, merchant_id: str, event: str, cause: str, **fields: str | None) -> bool:
    """Append to the timeline; False if this event was recorded before (a retry)."""
    inserted = await session.execute(
        insert(MerchantEvent)
        .values(merchant_id=merchant_id, event=event, cause=cause, details={}, **fields)
        .on_conflict_do_nothing(index_elements=["merchant_id", "event"])
        .returning(MerchantEvent.id)
    )
    return inserted.scalar_one_or_none() is not None


class OnboardingActivities:
    def __init__(self, sessions: async_sessionmaker[AsyncSession]) -> None:
        self._sessions = sessions

    @activity.defn(name="onboarding.submit")
    async def submit(self, merchant_id: str) -> Terms:
        """Record the merchant (SUBMITTED) from application version 1 and snapshot its category's terms."""
        async with unit_of_work(self._sessions) as session:
            done = await session.get(MerchantOnboarding, merchant_id)
            merchant = await session.get(Merchant, merchant_id)
            if done is not None and merchant is not None:
                return Terms(
                    category=merchant.category,
                    risk_level=RiskLevel(done.risk_level),
                    deposit_minor=done.deposit_minor,
                    currency=merchant.currency,
                )
            app = await application(session, merchant_id, 1)
            if app is None:
                raise refuse(Refusal.APPLICATION_NOT_FOUND, f"merchant {merchant_id} has no application")
            category = await session.get(MerchantCategory, app.category)
            if category is None:
                raise refuse(Refusal.UNKNOWN_CATEGORY, f"category {app.category!r} does not exist")
            session.add(
                Merchant(
                    id=merchant_id,
                    name=app.name,
                    category=app.category,
                    currency=app.currency,
                    status=MerchantStatus.SUBMITTED.value,
                )
            )
            await session.flush()  # the onboarding row refers to the merchant
            session.add(
                MerchantOnboarding(
                    merchant_id=merchant_id,
                    application_version=1,
                    risk_level=category.risk_level,
                    deposit_minor=category.deposit_minor,
                    contract_signed=False,
                    accounts_opened=False,
                )
            )
            await session.flush()
            await _add_event(session, merchant_id, "submitted", "application received", status_to="SUBMITTED")
            return Terms(
                category=app.category,
                risk_level=RiskLevel(category.risk_level),
                deposit_minor=category.deposit_minor,
                currency=app.currency,
            )

    @activity.defn(name="onboarding.transition")
    async def transition(self, t: OnboardingTransition) -> None:
        async with unit_of_work(self._sessions) as session:
            merchant = await session.get(Merchant, t.merchant_id, with_for_update=True)
            state = await session.get(MerchantOnboarding, t.merchant_id, with_for_update=True)
            if merchant is None or state is None:
                raise refuse(Refusal.MERCHANT_NOT_FOUND, f"merchant {t.merchant_id} is not recorded")
            current = merchant.status
            if not await _add_event(
                session, t.merchant_id, t.event, t.cause, status_from=current, status_to=(t.to or current)
            ):
                return  # an earlier try of this activity wrote everything below
            if t.to is not None:
                merchant.status = t.to.value
                if t.to in (MerchantStatus.REJECTED, MerchantStatus.EXPIRED):
                    state.reason = t.cause
            if t.version is not None:
                state.application_version = t.version
                app = await application(session, t.merchant_id, t.version)
                if app is not None:
                    merchant.name = app.name
            if t.kyc:
                await session.execute(
                    insert(KycCheckResult)
                    .values(
                        [
                            {
                                "merchant_id": t.merchant_id,
                                "version": state.application_version,
                                "kind": r.check.value,
                                "request_no": r.request_no,
                                "status": r.status,
                                "findings": r.findings,
                            }
                            for r in t.kyc
                        ]
                    )
                    .on_conflict_do_nothing(index_elements=["request_no"])
                )
            if t.review is not None:
                rv = t.review
                session.add(
                    MerchantReview(
                        merchant_id=t.merchant_id,
                        event=t.event,
                        stage=rv.stage.value,
                        decision=rv.decision.value,
                        reason=rv.reason,
                        auditor=rv.by.actor,
                        auditor_key_id=rv.by.key_id,
                        application_version=rv.version,
                    )
                )
                # The decision and its audit record commit together, written by the flow that took it.
                who = Principal(key_id=rv.by.key_id, name=rv.by.name, role=Role(rv.by.role), merchant_id=None)
                await record(
                    session,
                    who,
                    f"merchant.review.{rv.decision.value}",
                    "merchant",
                    t.merchant_id,
                    stage=rv.stage.value,
                    reason=rv.reason,
                    application_version=rv.version,
                )
            if t.contract is not None:
                state.contract_id, state.sign_url = t.contract.contract_id, t.contract.sign_url
                state.contract_signed = t.contract.status == "SIGNED"
            if t.deposit is not None:
                state.deposit_payment_no, state.deposit_pay_url = t.deposit.payment_no, t.deposit.pay_url
            if t.open_accounts:
                await open_accounts(session, merchant_accounts(t.merchant_id), merchant.currency)
                state.accounts_opened = True


def _translate(exc: Exception) -> ApplicationError:
    return party_failure(exc, "the party")


class VerificationActivities:
    """Calls to the KYC and e-sign providers, one request each, carrying the platform's request number."""

    def __init__(
        self, sessions: async_sessionmaker[AsyncSession], cipher: FieldCipher, kyc: KycClient, esign: ESignClient
    ) -> None:
        self._sessions = sessions
        self._cipher = cipher
        self._kyc = kyc
        self._esign = esign

    async def _subject(self, req: KycRequest) -> dict[str, str]:
        async with unit_of_work(self._sessions) as session:
            app = await application(session, req.merchant_id, req.version)
        if app is None:
            raise refuse(Refusal.APPLICATION_NOT_FOUND, f"merchant {req.merchant_id} has no application v{req.version}")
        if req.check is KycCheck.LICENCE:
            return {"business_name": app.name, "licence_no": app.business_licence_no}
        if req.check is KycCheck.IDENTITY:
            return {"name": app.legal_person_name, "id_no": self._cipher.decrypt(app.legal_person_id_enc)}
        return {
            "account_name": app.bank_account_name,
            "account_no": self._cipher.decrypt(app.bank_account_enc),
            "bank_name": app.bank_name,
        }

    @activity.defn(name="kyc.submit")
    async def submit_check(self, req: KycRequest) -> KycResult:
        subject = await self._subject(req)
        try:
            return await self._kyc.submit(req.check, req.request_no, req.merchant_id, subject, req.notify_url)
        except PartyError as exc:
            raise _translate(exc) from exc

    @activity.defn(name="kyc.query")
    async def query_check(self, req: KycRequest) -> KycResult:
        try:
            found = await self._kyc.query(req.check, req.request_no)
        except PartyError as exc:
            raise _translate(exc) from exc
        return found or KycResult(check=req.check, request_no=req.request_no, status="MISSING")

    @activity.defn(name="esign.create_contract")
    async def create_contract(self, req: ContractRequest) -> Contract:
        try:
            return await self._esign.create(
                req.request_no, req.merchant_id, f"Merchant services agreement ({req.merchant_id})", req.notify_url
            )
        except PartyError as exc:
            raise _translate(exc) from exc

    @activity.defn(name="esign.query_contract")
    async def query_contract(self, req: ContractRequest) -> Contract | None:
        try:
            return await self._esign.query(req.request_no)
        except PartyError as exc:
            raise _translate(exc) from exc
