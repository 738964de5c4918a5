"""``/_sandbox/...``: the test harness's levers (fault knobs) and windows (inspection), unsigned.

Tests use these to stage the outside world and to check what the platform actually did to it
(how many creates, closes, refund requests; which callbacks went out and how often).
"""

from __future__ import annotations

import json
import time
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request

from ops.sandbox import statements
from ops.sandbox.context import context
from ops.sandbox.errors import SandboxError, invalid, unknown_party
from ops.sandbox.faults import PARTIES, PAYMENT_CHANNELS, Faults, merge
from ops.sandbox.store import HOLDINGS_BY_PAYMENT_SQL, HOLDINGS_SQL

router = APIRouter(prefix="/_sandbox", tags=["sandbox control"])


def _party(party: str) -> str:
    if party not in PARTIES:
        raise unknown_party(party)
    return party


@router.get("/faults/{party}")
async def get_faults(party: str, request: Request) -> Faults:
    return context(request).store.get_faults(_party(party))


@router.put("/faults/{party}")
async def put_faults(party: str, request: Request) -> Faults:
    store = context(request).store
    try:
        patch = json.loads(await request.body())
    except ValueError:
        raise invalid("body must be a JSON object of fault knobs") from None
    faults = merge(store.get_faults(_party(party)), patch)
    store.put_faults(party, faults)
    return faults


@router.delete("/faults/{party}")
async def reset_faults(party: str, request: Request) -> Faults:
    context(request).store.reset_faults(_party(party))
    return Faults()


@router.put("/statements/{party}/{bill_date}")
async def prepare_statement(party: str, bill_date: str, request: Request, bill_type: str = "ALL") -> dict[str, Any]:
    """Hand the party a bill it has already written (the body, byte for byte): WeChat Pay's trade bill
    of that day and type is then this file, whatever the records say."""
    if _party(party) != "wechat" or bill_type not in statements.WECHAT_TYPES:
        raise invalid("prepared statements are WeChat Pay trade bills (bill_type ALL, SUCCESS or REFUND)")
    kept = statements.prepare(
        context(request).store, party, statements.day_of(bill_date), bill_type, await request.body()
    )
    return {"token": kept["token"], "sha1": kept["sha1"]}


@router.get("/{party}/orders/{out_trade_no}")
async def inspect_order(party: str, out_trade_no: str, request: Request) -> dict[str, Any]:
    book = context(request).book
    if _party(party) not in PAYMENT_CHANNELS:
        raise SandboxError(404, "CHANNEL_NOT_FOUND", f"{party!r} is not a payment channel")
    row = book.store.one("SELECT * FROM orders WHERE channel = ? AND out_trade_no = ?", party, out_trade_no)
    if row is None:
        raise SandboxError(404, "ORDER_NOT_EXIST", f"no order with out_trade_no {out_trade_no!r}")
    return book.order_view(row, internal=True)


@router.get("/{party}/refunds")
async def inspect_refunds(party: str, request: Request, out_trade_no: str | None = None) -> list[dict[str, Any]]:
    return context(request).book.list_refunds(_party(party), out_trade_no)


@router.get("/holdings")
async def holdings(request: Request, payment_no: Annotated[list[str] | None, Query()] = None) -> list[dict[str, Any]]:
    """Each channel's money per currency as the channel sees it (store.HOLDINGS_SQL); with `payment_no`
    (repeated), per payment and only of those payments (store.HOLDINGS_BY_PAYMENT_SQL)."""
    store = context(request).store
    if payment_no is None:
        return store.all(HOLDINGS_SQL)
    return store.all(HOLDINGS_BY_PAYMENT_SQL, json.dumps(payment_no))


@router.get("/notifications")
async def inspect_notifications(
    request: Request, party: str | None = None, ref: str | None = None
) -> list[dict[str, Any]]:
    return context(request).store.notifications(party, ref)


@router.post("/{party}/notifications/{event_id}/redeliver")
async def redeliver(party: str, event_id: str, request: Request) -> dict[str, Any]:
    ctx = context(request)
    if not ctx.store.redeliver(_party(party), event_id, time.time()):
        raise SandboxError(404, "EVENT_NOT_EXIST", f"no {party} notification {event_id!r}")
    ctx.notifier.wake()
    return {"event_id": event_id, "status": "QUEUED"}
