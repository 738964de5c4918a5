"""Signed notifications from outside parties: verify, store raw, deduplicate, then signal the flow.

Parties deliver at least once and retry until they get a 2xx, so the order matters: a notification
is stored before it is acted on, a redelivery of a stored one only retries the signal if that had
not gone through, and a failure to signal answers 503 so the party delivers again.

The signature binds method, path, timestamp, nonce and body; a nonce is accepted once per party
(remembered in the database, so several API processes agree). The verified party is bound to the
notification: the flow is told who sent it (never what the body claims), and a notification about
another party's subject, or reporting another amount or currency than the platform asked for, is
refused with a 422 and kept with its reason for operators (`GET /v1/callbacks/refused`).
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field, ValidationError
from sqlalchemy import delete, select, update
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from temporalio.service import RPCError, RPCStatusCode

from api.callback_routing import NotificationSignal, asked_for, route_for, subject_number
from api.deps import SessionDep, SessionFactoryDep, SettingsDep, require
from api.errors import ApiError
from api.params import Party
from api.schemas.callbacks import CallbackAck, RefusedNotification
from db import notifications
from db.api_keys import Principal
from db.engine import unit_of_work
from db.models import InboundNotification
from db.models.notifications import CallbackNonce
from domain.access import Role
from domain.callbacks import refusal
from domain.refusals import Refusal
from domain.settings import Settings
from domain.signing import SignatureError, verify

router = APIRouter(prefix="/v1/callbacks", tags=["callbacks"])


class Envelope(BaseModel):
    """What every party's notification carries; the rest is the party's own payload."""

    model_config = ConfigDict(extra="allow")
    event_id: str = Field(min_length=1, max_length=100)
    event_type: str = Field(min_length=1, max_length=50)


@router.post(
    "/{party}",
    response_model=CallbackAck,
    summary="Signed asynchronous notification from a payment channel, bank, KYC or e-sign party",
)
async def receive(party: Party, request: Request, settings: SettingsDep, factory: SessionFactoryDep) -> JSONResponse:
    secret = settings.secret_for(party)
    if secret is None:
        raise ApiError(Refusal.UNKNOWN_PARTY, f"no callbacks are accepted from {party!r}")
    raw = await request.body()
    target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
    try:
        nonce = verify(
            secret, request.method, target, request.headers, raw, max_age_seconds=settings.callback_max_age_seconds
        )
        await _remember_nonce(factory, settings, party, nonce)
    except SignatureError as exc:
        raise ApiError(Refusal.SIGNATURE_INVALID, f"callback refused: {exc}") from None
    try:
        payload: dict[str, Any] = json.loads(raw)
        envelope = Envelope.model_validate(payload)
    except (ValueError, ValidationError) as exc:
        raise ApiError(Refusal.INVALID_NOTIFICATION, f"notification body is not valid: {exc}") from None

    route = route_for(party, envelope.event_type, payload)
    subject = subject_number(envelope.event_type, payload)
    async with unit_of_work(factory) as session:
        asked = await asked_for(session, *subject) if subject else None
        refused = refusal(party, envelope.event_type, payload, asked)
        await session.execute(
            insert(InboundNotification)
            .values(
                party=party,
                event_id=envelope.event_id,
                event_type=envelope.event_type,
                subject_ref=route.subject_ref if route else (subject[1] if subject else ""),
                raw_body=raw.decode("utf-8", "replace"),
                payload=payload,
                refused_reason=refused,
            )
            .on_conflict_do_nothing(index_elements=["party", "event_id"])
        )
        stored = (
            await session.execute(
                select(InboundNotification).where(
                    InboundNotification.party == party, InboundNotification.event_id == envelope.event_id
                )
            )
        ).scalar_one()
    if stored.refused_reason is not None:
        raise ApiError(Refusal.NOTIFICATION_REFUSED, f"notification refused: {stored.refused_reason}")
    if stored.routed_at is not None:
        return JSONResponse({"status": "duplicate", "event_id": envelope.event_id})
    error: str | None
    if route is None:
        outcome, error = "stored", f"no flow handles {party} {envelope.event_type}"
    else:
        # The flow learns who sent it from the signature, never from what the body claims.
        outcome, error = await _signal(request, route.workflow_id, route.signal, {**payload, "party": party})
    async with unit_of_work(factory) as session:
        await session.execute(
            update(InboundNotification)
            .where(InboundNotification.id == stored.id)
            .values(routed_at=datetime.now(UTC), route_error=error)
        )
    return JSONResponse({"status": outcome, "event_id": envelope.event_id})


async def _remember_nonce(
    factory: async_sessionmaker[AsyncSession], settings: Settings, party: str, nonce: str
) -> None:
    """Accept a nonce once per party; forget those whose signatures can no longer be fresh."""
    now = datetime.now(UTC)
    async with unit_of_work(factory) as session:
        await session.execute(
            delete(CallbackNonce).where(
                CallbackNonce.seen_at < now - timedelta(seconds=2 * settings.callback_max_age_seconds)
            )
        )
        inserted = await session.execute(
            insert(CallbackNonce)
            .values(party=party, nonce=nonce, seen_at=now)
            .on_conflict_do_nothing(index_elements=["party", "nonce"])
            .returning(CallbackNonce.nonce)
        )
        if inserted.first() is None:
            raise SignatureError("signature nonce was already used (replayed request)")


@router.get("/refused", summary="Notifications refused after their signature verified (for operators)")
async def refused(
    session: SessionDep,
    _: Annotated[Principal, Depends(require(Role.OPERATOR, Role.FINANCE))],
    subject_ref: Annotated[str | None, Query(max_length=100)] = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
) -> list[RefusedNotification]:
    rows = await notifications.refused(session, subject_ref=subject_ref, limit=limit)
    return [
        RefusedNotification(
            party=r.party,
            event_id=r.event_id,
            event_type=r.event_type,
            subject_ref=r.subject_ref,
            reason=r.refused_reason or "",
            received_at=r.received_at,
        )
        for r in rows
    ]


async def _signal(
    request: Request, workflow_id: str, signal: NotificationSignal, payload: dict[str, Any]
) -> tuple[str, str | None]:
    client = await request.app.state.temporal.get()
    try:
        await client.get_workflow_handle(workflow_id).signal(signal, payload)
    except RPCError as exc:
        if exc.status is RPCStatusCode.NOT_FOUND:
            # Stored for the operators and reconciliation: no flow is waiting for it.
            return "stored", f"no running flow {workflow_id}"
        raise ApiError(Refusal.TEMPORAL_UNAVAILABLE, f"could not deliver to {workflow_id}; retry later") from exc
    return "accepted", None
