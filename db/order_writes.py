"""The writes every order makes several times (status moves with their timeline event, the dispatch offer),
each one statement run straight through the driver (db/engine.py `fetch_prepared`): one round trip while
the order's row is locked, and none of the ORM's per-statement CPU. The rules they apply are decided in
domain/ (the caller passes what they decided: the statuses a move may start from, whether it frees the
provider); the statements only apply them under the row lock."""

from __future__ import annotations

from dataclasses import dataclass

from psycopg.types.json import Jsonb
from sqlalchemy.ext.asyncio import AsyncSession

from db.engine import fetch_prepared

# `cur` locks the order's row and reads its status; the timeline event is written only when the move is
# legal from that status (or is no move), once per (order, event): a retry finds its event and writes
# nothing. The order's columns change, and its provider is let go, only with a new event.
_MOVE = """
WITH cur AS (
    SELECT status FROM orders WHERE order_no = %(order_no)s FOR UPDATE
), ev AS (
    INSERT INTO order_timeline (order_no, event, cause, status_from, status_to, details)
    SELECT %(order_no)s, %(event)s, %(cause)s, cur.status, coalesce(CAST(%(to)s AS text), cur.status), %(details)s
    FROM cur
    WHERE CAST(%(to)s AS text) IS NULL OR cur.status = ANY(CAST(%(legal_from)s AS text[]))
    ON CONFLICT (order_no, event) DO NOTHING
    RETURNING id
), moved AS (
    UPDATE orders SET
        status = coalesce(CAST(%(to)s AS text), status),
        paid_minor = coalesce(CAST(%(paid_minor)s AS bigint), paid_minor),
        cancel_reason = coalesce(CAST(%(cancel_reason)s AS text), cancel_reason),
        refund_required_minor = coalesce(CAST(%(refund_required_minor)s AS bigint), refund_required_minor),
        updated_at = now()
    WHERE order_no = %(order_no)s AND CAST(%(changes)s AS boolean) AND EXISTS (SELECT 1 FROM ev)
)"""
_RESULT = """
SELECT (SELECT status FROM cur) AS status, EXISTS (SELECT 1 FROM ev) AS recorded
"""
_TRANSITION = _MOVE + _RESULT
# A move that frees the provider lets them go in the same statement. The others do not name the providers'
# table at all: a statement that did would lock it (ROW EXCLUSIVE) even when it changes no row.
_TRANSITION_FREEING = (
    _MOVE
    + """, freed AS (
    UPDATE service_providers SET current_order_no = NULL
    WHERE current_order_no = %(order_no)s AND EXISTS (SELECT 1 FROM ev)
)"""
    + _RESULT
)


@dataclass(frozen=True)
class Moved:
    status: str | None  # the order's status before the move; None: no such order
    recorded: bool  # False: not legal from that status, or recorded by an earlier try (nothing written)


async def transition(
    session: AsyncSession,
    *,
    order_no: str,
    event: str,
    cause: str,
    to: str | None,
    legal_from: list[str],
    frees_provider: bool,
    details: dict[str, str | int],
    paid_minor: int | None = None,
    cancel_reason: str | None = None,
    refund_required_minor: int | None = None,
) -> Moved:
    """Record `event` on the order's timeline and apply the move, if `to` is None (no move) or the order is
    in one of `legal_from`; `frees_provider`: the provider holding the order is let go with it."""
    changes = to is not None or any(v is not None for v in (paid_minor, cancel_reason, refund_required_minor))
    row = await fetch_prepared(
        session,
        _TRANSITION_FREEING if frees_provider else _TRANSITION,
        {
            "order_no": order_no,
            "event": event,
            "cause": cause,
            "to": to,
            "legal_from": legal_from,
            "details": Jsonb(details),
            "paid_minor": paid_minor,
            "cancel_reason": cancel_reason,
            "refund_required_minor": refund_required_minor,
            "changes": changes,
        },
    )
    return Moved(status=row.status, recorded=row.recorded)


# The order's row, its `created` event and its stock, in one statement. Nothing is written but by the
# first try (the order number is the key). Stock rows of the order's merchant are locked in sku order (two
# orders for the same SKUs never wait on each other in a cycle) and taken where enough is left; a SKU
# without a stock row of this merchant is a service with unlimited capacity. The SKUs that are short, with
# what is left of them, come back for the admission rule to refuse (the caller's transaction rolls back).
_CREATE = """
WITH created AS (
    INSERT INTO orders (order_no, customer_id, merchant_id, currency, goods_minor, delivery_fee_minor,
        discount_minor, payable_minor, paid_minor, refunded_minor, status, payment_no, preferred_channel,
        dispatch_attempts, refund_required_minor, settleable, promoter_id, promoter_bps, campaign_id,
        commission_rule_id, commission_bps, commission_snapshot)
    VALUES (%(order_no)s, %(customer_id)s, %(merchant_id)s, %(currency)s, %(goods_minor)s, %(delivery_fee_minor)s,
        %(discount_minor)s, %(payable_minor)s, 0, 0, %(status)s, %(payment_no)s, %(preferred_channel)s,
        0, 0, false, %(promoter_id)s, %(promoter_bps)s, %(campaign_id)s,
        %(commission_rule_id)s, %(commission_bps)s, %(commission_snapshot)s)
    ON CONFLICT (order_no) DO NOTHING
    RETURNING order_no
), event AS (
    INSERT INTO order_timeline (order_no, event, cause, status_to, details)
    SELECT order_no, 'created', 'order placed', %(status)s, %(event_details)s FROM created
    ON CONFLICT (order_no, event) DO NOTHING
), locked AS (
    SELECT s.sku_id, s.available, w.quantity
    FROM sku_stock s
    JOIN unnest(CAST(%(skus)s AS text[]), CAST(%(quantities)s AS integer[])) AS w(sku_id, quantity)
      ON w.sku_id = s.sku_id
    WHERE s.merchant_id = %(merchant_id)s AND EXISTS (SELECT 1 FROM created)
    ORDER BY s.sku_id
    FOR UPDATE OF s
), taken AS (
    UPDATE sku_stock s SET available = s.available - l.quantity
    FROM locked l
    WHERE s.sku_id = l.sku_id AND l.available >= l.quantity
    RETURNING s.sku_id, l.quantity
), held AS (
    INSERT INTO stock_reservations (order_no, sku_id, quantity, status)
    SELECT %(order_no)s, sku_id, quantity, %(reserved)s FROM taken
)
SELECT EXISTS (SELECT 1 FROM created) AS created,
       coalesce((SELECT array_agg(sku_id ORDER BY sku_id) FROM locked WHERE available < quantity), '{}') AS short_skus,
       coalesce((SELECT array_agg(available ORDER BY sku_id) FROM locked WHERE available < quantity), '{}')
           AS short_available
"""

# Held (FOR SHARE) until the order is written: the merchant cannot be suspended in between.
_MERCHANT = "SELECT status, currency FROM merchants WHERE id = %(merchant_id)s FOR SHARE"


@dataclass(frozen=True)
class MerchantRow:
    status: str
    currency: str


async def merchant_for_order(session: AsyncSession, merchant_id: str) -> MerchantRow | None:
    """The merchant's status and currency, the columns admission judges (not the whole row)."""
    row = await fetch_prepared(session, _MERCHANT, {"merchant_id": merchant_id})
    return None if row is None else MerchantRow(row.status, row.currency)


@dataclass(frozen=True)
class Created:
    created: bool  # False: an earlier try created the order (nothing written now)
    short: dict[str, int]  # SKUs of the merchant's stock without enough left: what is left of each


async def create_order(
    session: AsyncSession, *, row: dict[str, object], status: str, reserved: str, quantities: dict[str, int]
) -> Created:
    """Insert the order (`row`: its columns), its `created` event and its stock reservations."""
    result = await fetch_prepared(
        session,
        _CREATE,
        {
            **row,
            "commission_snapshot": Jsonb(row["commission_snapshot"]),
            "event_details": Jsonb({"payable_minor": row["payable_minor"]}),
            "status": status,
            "reserved": reserved,
            "skus": list(quantities),
            "quantities": list(quantities.values()),
        },
    )
    return Created(created=result.created, short=dict(zip(result.short_skus, result.short_available, strict=True)))


# A dispatch attempt, in two statements. The first finds an attempt recorded by an earlier try (its
# details answer again), or else locks the order and lets go the provider offered it last time (they
# declined or missed it). The second must come after the first has freed that provider: a provider holds
# at most one order (unique `current_order_no`) and a statement's row updates run in no set order.
_DISPATCH_BEGIN = """
WITH done AS (
    SELECT details FROM order_timeline WHERE order_no = %(order_no)s AND event = %(event)s
), locked AS (
    SELECT merchant_id FROM orders WHERE order_no = %(order_no)s AND NOT EXISTS (SELECT 1 FROM done) FOR UPDATE
), freed AS (
    UPDATE service_providers SET current_order_no = NULL
    WHERE current_order_no = %(order_no)s AND EXISTS (SELECT 1 FROM locked)
)
SELECT EXISTS (SELECT 1 FROM done) AS done, (SELECT details FROM done) AS details,
       (SELECT merchant_id FROM locked) AS merchant_id
"""

# The second gives the order to one online, idle provider who serves all its categories: the merchant's
# own staff first, then the platform's pool, the one idle longest first, never one in `exclude` (they
# declined it). The provider's row is locked (concurrent dispatches skip it) and holds the order; the
# order and its timeline say who was offered it, or that nobody was free.
_DISPATCH_CLAIM = """
WITH wanted AS (
    SELECT coalesce(array_agg(DISTINCT category_id), CAST('{}' AS varchar[])) AS categories
    FROM order_items WHERE order_no = %(order_no)s
), candidate AS (
    SELECT p.id FROM service_providers p, wanted w
    WHERE p.active AND p.online AND p.current_order_no IS NULL
      AND (p.merchant_id = %(merchant_id)s OR p.merchant_id IS NULL)
      AND p.categories @> w.categories
      AND p.id <> ALL(CAST(%(exclude)s AS text[]))
    ORDER BY CASE WHEN p.merchant_id = %(merchant_id)s THEN 0 ELSE 1 END, p.last_assigned_at ASC NULLS FIRST, p.id
    LIMIT 1
    FOR UPDATE OF p SKIP LOCKED
), claimed AS (
    UPDATE service_providers p SET current_order_no = %(order_no)s, last_assigned_at = now()
    FROM candidate c WHERE p.id = c.id
    RETURNING p.id
), offered AS (
    UPDATE orders SET provider_id = c.id, dispatch_attempts = %(attempt)s, updated_at = now()
    FROM claimed c WHERE order_no = %(order_no)s
), event AS (
    INSERT INTO order_timeline (order_no, event, cause, details)
    SELECT %(order_no)s, %(event)s,
           coalesce('offered to provider ' || c.id, 'no service provider available'),
           CASE WHEN c.id IS NULL THEN jsonb_build_object('attempt', CAST(%(attempt)s AS integer))
                ELSE jsonb_build_object('attempt', CAST(%(attempt)s AS integer), 'provider_id', c.id) END
    FROM (SELECT 1) one LEFT JOIN claimed c ON true
    ON CONFLICT (order_no, event) DO NOTHING
)
SELECT (SELECT id FROM claimed) AS provider_id
"""


@dataclass(frozen=True)
class Dispatched:
    found: bool  # False: no such order
    provider_id: str | None  # None: nobody was free


async def dispatch(session: AsyncSession, *, order_no: str, attempt: int, exclude: list[str]) -> Dispatched:
    """Offer the order to a free provider who serves it, as attempt `attempt` (once: a retry answers the
    attempt's first outcome)."""
    event = f"dispatch-{attempt}"
    begun = await fetch_prepared(session, _DISPATCH_BEGIN, {"order_no": order_no, "event": event})
    if begun.done:
        details = begun.details or {}
        return Dispatched(True, str(details["provider_id"]) if details.get("provider_id") else None)
    if begun.merchant_id is None:
        return Dispatched(False, None)
    claimed = await fetch_prepared(
        session,
        _DISPATCH_CLAIM,
        {
            "order_no": order_no,
            "event": event,
            "attempt": attempt,
            "merchant_id": begun.merchant_id,
            "exclude": exclude or [""],
        },
    )
    return Dispatched(True, claimed.provider_id)
