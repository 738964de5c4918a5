"""Signed notifications from outside parties: verify, store raw, deduplicate, then signal the flow.

Parties deliver at least once and retry until they get a 2xx, so the order matters: a notification
is stored before it is acted on, a redelivery of a stored one only retries the signal if that had
not gone through, and a failure to signal answers 503 so the party delivers again.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field, ValidationError
from sqlalchemy import select, update
from sqlalchemy.dialects.postgresql import insert
from temporalio.service import RPCError, RPCStatusCode

from api.callback_routing import route_for
from api.deps import SessionFactoryDep, SettingsDep
from api.errors import ApiError
from db.engine import unit_of_work
from db.models import InboundNotification
from domain.signing import SIGNATURE_HEADER, TIMESTAMP_HEADER, SignatureError, verify

router = APIRouter(prefix="/v1/callbacks", tags=["callbacks"])


class Envelope(BaseModel):
    """What every party's notification carries; the rest is the party's own payload."""

    model_config = ConfigDict(extra="allow")
    event_id: str = Field(min_length=1, max_length=100)
    event_type: str = Field(min_length=1, max_length=50)


@router.post("/{party}", summary="Signed asynchronous notification from a payment channel, bank, KYC or e-sign party")
async def receive(party: str, request: Request, settings: SettingsDep, factory: SessionFactoryDep) -> JSONResponse:
    secret = settings.secret_for(party)
    if secret is None:
        raise ApiError(404, "UNKNOWN_PARTY", f"no callbacks are accepted from {party!r}")
    raw = await request.body()
    try:
        verify(
            secret,
            request.headers.get(TIMESTAMP_HEADER),
            request.headers.get(SIGNATURE_HEADER),
            raw,
            max_age_seconds=settings.callback_max_age_seconds,
        )
    except SignatureError as exc:
        raise ApiError(401, "SIGNATURE_INVALID", f"callback refused: {exc}") from None
    try:
        payload: dict[str, Any] = json.loads(raw)
        envelope = Envelope.model_validate(payload)
    except (ValueError, ValidationError) as exc:
        raise ApiError(400, "INVALID_NOTIFICATION", f"notification body is not valid: {exc}") from None

    route = route_for(party, envelope.event_type, payload)
    async with unit_of_work(factory) as session:
        await session.execute(
            insert(InboundNotification)
            .values(
                party=party,
                event_id=envelope.event_id,
                event_type=envelope.event_type,
                subject_ref=route.subject_ref if route else "",
                raw_body=raw.decode("utf-8", "replace"),
                payload=payload,
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
    if stored.routed_at is not None:
        return JSONResponse({"status": "duplicate", "event_id": envelope.event_id})
    error: str | None
    if route is None:
        outcome, error = "stored", f"no flow handles {party} {envelope.event_type}"
    else:
        outcome, error = await _signal(request, route.workflow_id, route.signal, payload)
    async with unit_of_work(factory) as session:
        await session.execute(
            update(InboundNotification)
            .where(InboundNotification.id == stored.id)
            .values(routed_at=datetime.now(UTC), route_error=error)
        )
    return JSONResponse({"status": outcome, "event_id": envelope.event_id})


async def _signal(request: Request, workflow_id: str, signal: str, payload: dict[str, Any]) -> tuple[str, str | None]:
    client = await request.app.state.temporal.get()
    try:
        await client.get_workflow_handle(workflow_id).signal(signal, payload)
    except RPCError as exc:
        if exc.status is RPCStatusCode.NOT_FOUND:
            # Stored for the operators and reconciliation: no flow is waiting for it.
            return "stored", f"no running flow {workflow_id}"
        raise ApiError(503, "TEMPORAL_UNAVAILABLE", f"could not deliver to {workflow_id}; retry later") from exc
    return "accepted", None
