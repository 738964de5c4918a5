"""Auditors: the review queue and an application's page with its decisions. Merchants: a merchant's page
(status, balance, statements, withdrawals) for finance, auditors, operators and the merchant itself."""

from __future__ import annotations

import asyncio
from typing import Annotated

from fastapi import APIRouter, Form, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from api.console.auth import FormUser, User
from api.console.calls import api
from api.console.render import page, refused
from api.deps import SessionDep
from api.params import MerchantId
from db import console as repo
from domain.access import Role
from domain.merchants import ReviewDecision

router = APIRouter(prefix="/console")
# Who may review, as the API's review route admits (api/routes/merchants.py).
REVIEWERS = (Role.AUDITOR,)


@router.get("/auditor", response_class=HTMLResponse)
async def review_queue(request: Request, user: User, session: SessionDep) -> Response:
    if user.role not in REVIEWERS:  # the queue is a database read: held to the review route's roles
        return page(request, "refused.html", user, status_code=403, reason=None)
    return page(request, "auditor.html", user, items=await repo.applications_in_review(session))


@router.get("/merchants/{merchant_id}", response_class=HTMLResponse)
async def merchant(request: Request, merchant_id: MerchantId, user: User) -> Response:
    detail = await api(request, user, "GET", f"/v1/merchants/{merchant_id}")
    if not detail.ok:
        return refused(request, user, detail)
    # What this key may also read about the merchant (each read answers for itself: a 403 shows nothing).
    balance, statements, withdrawals = await asyncio.gather(
        api(request, user, "GET", f"/v1/merchants/{merchant_id}/balance"),
        api(request, user, "GET", "/v1/settlements", params={"merchant_id": merchant_id, "limit": 20}),
        api(request, user, "GET", "/v1/withdrawals", params={"merchant_id": merchant_id}),
    )
    return page(
        request,
        "merchant.html",
        user,
        m=detail.body,
        balance=balance.body if balance.ok else None,
        statements=statements.body if statements.ok else None,
        withdrawals=withdrawals.body if withdrawals.ok else None,
        may_review=user.role in REVIEWERS and detail.body["status"] in ("IN_REVIEW", "SECOND_REVIEW"),
        decisions=[d.value for d in ReviewDecision],
    )


@router.post("/merchants/{merchant_id}/review")
async def review(
    request: Request,
    merchant_id: MerchantId,
    user: FormUser,
    decision: Annotated[str, Form(max_length=40)],
    reason: Annotated[str, Form(max_length=1000)] = "",
) -> Response:
    answer = await api(
        request, user, "POST", f"/v1/merchants/{merchant_id}/review", json={"decision": decision, "reason": reason}
    )
    if not answer.ok:
        return refused(request, user, answer)
    return RedirectResponse(f"/console/merchants/{merchant_id}?done={answer.body['status']}", 303)
