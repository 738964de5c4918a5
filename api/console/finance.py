"""Finance: one approval queue across statements, withdrawals, UNKNOWN payouts, manual refund transfers
and reconciliation discrepancies; a statement's page; the trial balance. Each button is the API call."""

from __future__ import annotations

import asyncio
from typing import Annotated, Any

from fastapi import APIRouter, Form, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from api.console.auth import FormUser, User
from api.console.calls import ApiAnswer, api
from api.console.render import page, refused
from api.deps import SessionDep
from api.params import DbId, RefundNo, WithdrawalId
from db import console as repo

router = APIRouter(prefix="/console")
QUEUE = 200  # the oldest this many of each kind; the queue shows the oldest this many in all
Text = Annotated[str, Form(max_length=500)]


@router.get("/finance", response_class=HTMLResponse)
async def queue(request: Request, user: User, session: SessionDep) -> Response:
    queue = {"status": "PENDING_APPROVAL", "oldest_first": "true", "limit": QUEUE}
    reads = {
        "statement": ("/v1/settlements", queue),
        "failed": ("/v1/settlements", {**queue, "status": "FAILED"}),
        "withdrawal": ("/v1/withdrawals", {"status": "PENDING_APPROVAL"}),
        "unknown": ("/v1/withdrawals", {"status": "UNKNOWN"}),
        "discrepancy": ("/v1/recon/discrepancies", {"status": "AWAITING_FINANCE"}),
        "second": ("/v1/recon/discrepancies", {"status": "AWAITING_APPROVAL"}),
    }
    answers = await asyncio.gather(*(api(request, user, "GET", path, params=params) for path, params in reads.values()))
    asked = dict(zip(reads, answers, strict=True))
    for answer in asked.values():
        if not answer.ok:
            return refused(request, user, answer)
    items: list[dict[str, Any]] = []
    for kind in ("statement", "failed"):
        for s in asked[kind].body:
            items.append(
                _item(
                    "statement",
                    f"#{s['id']} {s['merchant_id']}",
                    s["net_minor"],
                    s["created_at"],
                    f"/console/statements/{s['id']}",
                    s["status"],
                )
            )
    for kind in ("withdrawal", "unknown"):
        for w in asked[kind].body:
            items.append(
                _item(
                    "withdrawal",
                    f"{w['withdrawal_id']} {w['merchant_id']}",
                    w["amount_minor"],
                    w["created_at"],
                    f"/console/merchants/{w['merchant_id']}",
                    w["status"],
                    w,
                )
            )
    for r in await repo.manual_refunds_waiting(session):
        items.append(
            _item(
                "manual_refund",
                f"{r['refund_no']} ({r['order_no']})",
                r["amount_minor"],
                r["since"],
                f"/console/orders?no={r['order_no']}",
                "MANUAL_PENDING",
                r,
            )
        )
    for d in asked["discrepancy"].body + asked["second"].body:
        items.append(
            _item(
                "discrepancy",
                f"{d['source']} {d['type']} {d['our_no']}",
                d.get("statement_minor"),
                d.get("created_at") or d["bill_date"],
                "",
                d["status"],
                d,
            )
        )
    items.sort(key=lambda i: str(i["since"]))
    return page(request, "finance.html", user, items=items[:QUEUE])


def _item(
    kind: str,
    subject: str,
    amount: int | None,
    since: Any,
    link: str,
    status: str,
    record: dict[str, Any] | None = None,
) -> dict[str, Any]:
    return {
        "kind": kind,
        "subject": subject,
        "amount": amount,
        "since": since,
        "link": link,
        "status": status,
        "record": record or {},
    }


@router.get("/statements/{statement_id}", response_class=HTMLResponse)
async def statement(request: Request, statement_id: DbId, user: User) -> Response:
    answer = await api(request, user, "GET", f"/v1/settlements/{statement_id}")
    if not answer.ok:
        return refused(request, user, answer)
    return page(request, "statement.html", user, s=answer.body)


@router.get("/statements/{statement_id}.csv")
async def statement_csv(request: Request, statement_id: DbId, user: User) -> Response:
    answer = await api(request, user, "GET", f"/v1/settlements/{statement_id}", params={"format": "csv"})
    if not answer.ok:
        return refused(request, user, answer)
    return Response(
        answer.text,
        media_type="text/csv",
        headers={"Content-Disposition": f'attachment; filename="statement-{statement_id}.csv"'},
    )


async def _decided(request: Request, user: FormUser, path: str, body: dict[str, Any], back: str) -> Response:
    answer: ApiAnswer = await api(request, user, "POST", path, json=body)
    if not answer.ok:
        return refused(request, user, answer)
    return RedirectResponse(f"{back}?done={answer.body.get('status', 'OK') if answer.body else 'OK'}", 303)


@router.post("/statements/{statement_id}/approve")
async def approve_statement(request: Request, statement_id: DbId, user: FormUser, note: Text = "") -> Response:
    back = f"/console/statements/{statement_id}"
    return await _decided(request, user, f"/v1/settlements/{statement_id}/approve", {"note": note}, back)


@router.post("/statements/{statement_id}/reject")
async def reject_statement(request: Request, statement_id: DbId, user: FormUser, reason: Text = "") -> Response:
    back = f"/console/statements/{statement_id}"
    return await _decided(request, user, f"/v1/settlements/{statement_id}/reject", {"reason": reason}, back)


@router.post("/withdrawals/{withdrawal_id}/{decision}")
async def decide_withdrawal(
    request: Request, withdrawal_id: WithdrawalId, decision: str, user: FormUser, text: Text = ""
) -> Response:
    bodies = {
        "approve": ("approve", {"note": text}),
        "reject": ("reject", {"reason": text}),
        "paid": ("resolve", {"outcome": "PAID", "reason": text}),
        "failed": ("resolve", {"outcome": "FAILED", "reason": text}),
    }
    if decision not in bodies:
        return RedirectResponse("/console/finance", 303)
    action, body = bodies[decision]
    return await _decided(request, user, f"/v1/withdrawals/{withdrawal_id}/{action}", body, "/console/finance")


@router.post("/refunds/{refund_no}/approve")
async def approve_manual_refund(request: Request, refund_no: RefundNo, user: FormUser, note: Text = "") -> Response:
    path = f"/v1/refunds/{refund_no}/manual-transfer/approve"
    return await _decided(request, user, path, {"note": note}, "/console/finance")


@router.post("/discrepancies/{discrepancy_id}/resolve")
async def resolve_discrepancy(
    request: Request, discrepancy_id: DbId, user: FormUser, action: Text = "", reason: Text = ""
) -> Response:
    path = f"/v1/recon/discrepancies/{discrepancy_id}/resolve"
    return await _decided(request, user, path, {"action": action, "reason": reason}, "/console/finance")


@router.post("/discrepancies/{discrepancy_id}/approve")
async def approve_discrepancy(request: Request, discrepancy_id: DbId, user: FormUser, note: Text = "") -> Response:
    path = f"/v1/recon/discrepancies/{discrepancy_id}/approve"
    return await _decided(request, user, path, {"note": note}, "/console/finance")


@router.get("/ledger", response_class=HTMLResponse)
async def ledger(request: Request, user: User) -> Response:
    answer = await api(request, user, "GET", "/v1/ledger/trial-balance")
    if not answer.ok:
        return refused(request, user, answer)
    return page(request, "ledger.html", user, tb=answer.body)
