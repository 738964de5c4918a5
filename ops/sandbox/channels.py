"""HTTP face of the payment channels (``/{channel}/v1/...`` signed, ``/{channel}/pay/...`` the customer).

Every platform → channel call passes the same gate a real channel applies: the party exists, the
fault knobs (latency, outage, random errors), then the HMAC signature over the raw body.
"""

from __future__ import annotations

import time
from typing import Any

from fastapi import APIRouter, Request

from ops.sandbox import quirks
from ops.sandbox.channel_refunds import CreateRefund
from ops.sandbox.context import SandboxContext, context
from ops.sandbox.errors import SandboxError
from ops.sandbox.faults import PAYMENT_CHANNELS, Faults, gate
from ops.sandbox.gate import parse, verified
from ops.sandbox.payments import CreateOrder
from ops.sandbox.store import iso

router = APIRouter(tags=["payment channels"])


def _channel(ctx: SandboxContext, channel: str) -> Faults:
    if channel not in PAYMENT_CHANNELS:
        raise SandboxError(404, "CHANNEL_NOT_FOUND", f"{channel!r} is not a payment channel")
    return ctx.store.get_faults(channel)


async def _signed(request: Request, channel: str) -> tuple[SandboxContext, Faults, bytes]:
    return await verified(request, channel, _channel(context(request), channel))


@router.post("/{channel}/v1/orders")
async def create_order(channel: str, request: Request) -> dict[str, Any]:
    ctx, _, body = await _signed(request, channel)
    return quirks.mask_order(ctx.store, ctx.book.create_order(channel, parse(CreateOrder, body)))


@router.get("/{channel}/v1/orders/{out_trade_no}")
async def query_order(channel: str, out_trade_no: str, request: Request) -> dict[str, Any]:
    ctx, faults, _ = await _signed(request, channel)
    if faults.query_down:
        raise SandboxError(503, "SYSTEM_ERROR", f"{channel} order query is down (sandbox fault)")
    return quirks.mask_order(ctx.store, ctx.book.query_order(channel, out_trade_no))


@router.post("/{channel}/v1/orders/{out_trade_no}/close")
async def close_order(channel: str, out_trade_no: str, request: Request) -> dict[str, Any]:
    ctx, _, _ = await _signed(request, channel)
    try:
        return ctx.book.close_order(channel, out_trade_no)
    except SandboxError as exc:
        # A hidden payment (quirks.HIDDEN) closes as if nobody had paid: the platform never learns of it.
        if exc.code != "ORDER_PAID" or quirks.HIDDEN not in quirks.marks_of(ctx.store, channel, out_trade_no):
            raise
        view = quirks.mask_order(ctx.store, exc.extra["order"])
        return {**view, "status": "CLOSED", "closed_at": iso(time.time())}


@router.post("/{channel}/pay/{out_trade_no}")
async def pay(channel: str, out_trade_no: str, request: Request) -> dict[str, Any]:
    """The customer paying (the order's pay_url). Not signed: it is the customer, not the platform."""
    ctx = context(request)
    faults = _channel(ctx, channel)
    await gate(channel, faults, signed=False)
    marks = quirks.payment_marks(faults)
    before = ctx.store.one("SELECT status FROM orders WHERE channel = ? AND out_trade_no = ?", channel, out_trade_no)
    view = ctx.book.pay(channel, out_trade_no, quirks.silenced(faults, marks))
    if marks and before and before["status"] == "NOTPAY":  # marks are fixed on the payment as it happens
        with ctx.store.tx() as db:
            quirks.mark(db, channel, out_trade_no, marks)
    ctx.notifier.wake()
    return view


@router.post("/{channel}/v1/refunds")
async def create_refund(channel: str, request: Request) -> dict[str, Any]:
    ctx, faults, body = await _signed(request, channel)
    req = parse(CreateRefund, body)
    if faults.refund_failure == "transient":
        # Refused before anything is recorded, so the platform's retry with the same number is clean.
        raise SandboxError(503, "SYSTEM_ERROR", "refund service temporarily unavailable (sandbox fault)")
    marks = quirks.refund_marks(faults)
    known = ctx.store.one("SELECT 1 FROM refunds WHERE channel = ? AND out_refund_no = ?", channel, req.out_refund_no)
    try:
        view = ctx.book.create_refund(channel, req, quirks.silenced(faults, marks))
    finally:  # also when the answer is "lost" (refund_retry_refused): the refund was recorded
        if marks and known is None:
            with ctx.store.tx() as db:
                if db.execute(
                    "SELECT 1 FROM refunds WHERE channel = ? AND out_refund_no = ?", (channel, req.out_refund_no)
                ).fetchone():
                    quirks.mark(db, channel, req.out_refund_no, marks)
    ctx.notifier.wake()
    return quirks.mask_refund(ctx.store, view)


@router.get("/{channel}/v1/refunds/{out_refund_no}")
async def query_refund(channel: str, out_refund_no: str, request: Request) -> dict[str, Any]:
    ctx, faults, _ = await _signed(request, channel)
    return quirks.mask_refund(ctx.store, ctx.book.query_refund(channel, out_refund_no, faults))
