"""The settlement split in SQL, and the claim statement that writes a page's lines with it.

`SPLIT` is `domain.commission.split` in integer SQL over a row `o` that carries an order's snapshot
(paid_minor — the merchant's gross —, refunded_minor, commission_bps, commission_snapshot, promoter_id,
promoter_bps), so a
page of lines is computed where the orders are instead of travelling to Python and back. The two must
agree to the minor unit: tests/integration/test_settlement_split_sql.py checks it on random orders.

- commission: half-up `(base*bps*2 + 10000) / 20000` (exact for non-negative bigints, as
  `domain.money.apply_bps`), raised to the snapshotted floor, lowered to the cap and to the base;
  LEAST/GREATEST skip NULLs, so a rule without a floor or cap needs no CASE;
- promoter: its basis points of the base, never more than what the commission left; none without a
  promoter (an empty id counts as none, as it is falsy in Python);
- merchant: exactly the rest.
"""

from __future__ import annotations

from domain.refunds import IN_FLIGHT

SPLIT = """
CROSS JOIN LATERAL (SELECT o.paid_minor - o.refunded_minor AS base) b
CROSS JOIN LATERAL (
    SELECT LEAST(b.base, (o.commission_snapshot ->> 'cap_minor')::bigint,
                 GREATEST((b.base * o.commission_bps * 2 + 10000) / 20000,
                          (o.commission_snapshot ->> 'floor_minor')::bigint)) AS commission_minor
) c
CROSS JOIN LATERAL (
    SELECT LEAST(b.base - c.commission_minor,
                 CASE WHEN COALESCE(o.promoter_id, '') = '' THEN 0
                      ELSE (b.base * o.promoter_bps * 2 + 10000) / 20000 END) AS promoter_minor
) p
"""
SPLIT_COLUMNS = "c.commission_minor, p.promoter_minor, b.base - c.commission_minor - p.promoter_minor AS net_minor"

# The columns of a statement line, in the order LINE_VALUES gives them for a row `o` joined with SPLIT.
LINE_COLUMNS = (
    "cycle_id, merchant_id, order_no, currency, promoter_id, gross_minor, refunded_minor,"
    " commission_minor, promoter_minor, net_minor, rule_id, rule, subsidy_minor"
)
LINE_VALUES = f"""o.merchant_id, o.order_no, o.currency, o.promoter_id, o.paid_minor, o.refunded_minor, {SPLIT_COLUMNS},
       o.commission_rule_id, COALESCE(o.commission_snapshot, '{{}}'::jsonb), o.subsidy_minor"""

# A line claims its order for its cycle until the line's statement is rejected or the cycle fails its
# checks; a line whose statement is approved settled its order. Neither is written to the order row: the
# claim is the line (and the order's absence from settlement_queue), the settlement the line's approved
# statement, so a cycle writes no order row at all (an update of `orders` is not HOT and rewrites each of
# its indexes). `{orders}` picks the lines.
LIVE_LINES = """
SELECT l.order_no, l.cycle_id, l.merchant_id FROM settlement_lines l
JOIN settlement_cycles c ON c.id = l.cycle_id AND c.status <> 'FAILED'
WHERE {orders}
  AND NOT EXISTS (SELECT 1 FROM settlement_statements s
                  WHERE s.cycle_id = l.cycle_id AND s.merchant_id = l.merchant_id AND s.status = 'REJECTED')
"""

# A claim page in one statement: lock a page of the queue strictly between two orders (:low_at, :low_no)
# and (:high_at, :high_no), from one end (oldest first, CLAIM_OLDEST, or newest first, CLAIM_NEWEST),
# delete it, and write the lines of the orders deleted, with nothing read back to the worker but the
# page's far end. Deleting the queue row is the claim: of two cycles claiming at once, one deletes it and
# the other skips it (locked) or finds it gone, so an order never gets two live lines. The queue holds
# only the orders a cycle may claim now (_QUEUE), so the page checks nothing else and neither locks nor
# writes an order row. A refund being opened takes its order out of the queue (UNQUEUE) under the same
# row lock: while it holds the row the page skips it (SKIP LOCKED), once it has committed the page finds
# the row deleted and skips it too, and a refund that comes after the page waits for it and then finds
# the order claimed. Queue rows are only inserted and deleted, never updated, so the page claims exactly
# the rows its snapshot saw and reads their orders in that same snapshot (a refund that ends queues its
# order again as a new row, which an older snapshot does not see, so a line never carries the amounts
# from before a refund).
# Rows a claim deleted stay in the queue's index until vacuumed, so each page starts where the last one
# stopped. Lines are unique per cycle and order; no conflict can arise, so a plain INSERT: ON CONFLICT
# would pre-check both unique indexes for every line. Returns the page's far end and how many it
# claimed; no row for an empty page.
_CLAIM_PAGE = f"""
WITH page AS (
    SELECT q.order_no, q.settleable_at FROM settlement_queue q
    WHERE q.settleable_at <= :cutoff
      AND (q.settleable_at, q.order_no) > (:low_at, :low_no)
      AND (q.settleable_at, q.order_no) < (:high_at, :high_no)
    ORDER BY q.settleable_at {{order}}, q.order_no {{order}}
    LIMIT :page_size
    FOR UPDATE SKIP LOCKED
), claimed AS (
    DELETE FROM settlement_queue q WHERE q.order_no = ANY(ARRAY(SELECT order_no FROM page))
    RETURNING q.order_no
), written AS (
    INSERT INTO settlement_lines ({LINE_COLUMNS})
    SELECT :cycle_id, {LINE_VALUES}
    FROM (
        -- The merchant's gross is what the customer paid plus the platform's subsidy still in escrow
        -- (captured with the payment, less what refunds reversed): SPLIT and the line read it as paid_minor.
        SELECT o.order_no, o.merchant_id, o.currency,
               o.paid_minor + o.subsidy_minor - o.subsidy_reversed_minor AS paid_minor,
               o.subsidy_minor - o.subsidy_reversed_minor AS subsidy_minor, o.refunded_minor, o.promoter_id,
               o.promoter_bps, o.commission_rule_id, o.commission_bps, o.commission_snapshot
        FROM orders o
        WHERE o.order_no = ANY(ARRAY(SELECT order_no FROM claimed))
    ) o {SPLIT}
)
SELECT p.settleable_at, p.order_no, (SELECT count(*) FROM claimed) AS claimed
FROM page p ORDER BY p.settleable_at {{reverse}}, p.order_no {{reverse}} LIMIT 1
"""
CLAIM_OLDEST = _CLAIM_PAGE.replace("{order}", "ASC").replace("{reverse}", "DESC")
CLAIM_NEWEST = _CLAIM_PAGE.replace("{order}", "DESC").replace("{reverse}", "ASC")

# Opening a refund takes its order out of the queue, under the order's row lock, before it reads
# whether a line claims the order: a claim page holding the queue row makes it wait, and it then finds
# the row gone and the line there. A refused refund rolls back, and the order stays queued.
UNQUEUE = "DELETE FROM settlement_queue WHERE order_no = :order_no"

# The cycle whose live line claims (or settled) one order (bound as :order_no), if any, and whether its
# statement was approved.
SETTLEMENT_OF = (
    "SELECT live.cycle_id, EXISTS (SELECT 1 FROM settlement_statements s WHERE s.cycle_id = live.cycle_id"
    " AND s.merchant_id = live.merchant_id AND s.status = 'APPROVED') AS settled FROM ("
    + LIVE_LINES.format(orders="l.order_no = :order_no")
    + ") live LIMIT 1"
)

# Into the queue go orders (picked by `{orders}`, over `o`) a cycle may claim: settleable, with no refund
# in flight (the refund's end queues the order again), and claimed by no live line (a settled order's
# line is live: it never goes back). Run when an order becomes settleable, when a refund of it ends, and
# when its line stops being live (its statement rejected, its cycle failed); each runs under the order's
# row lock or after the line's end, so the facts it reads are the committed ones.
_QUEUE = (
    """
INSERT INTO settlement_queue (order_no, settleable_at)
SELECT o.order_no, o.settleable_at FROM orders o
WHERE {orders} AND o.settleable
  AND NOT EXISTS (SELECT 1 FROM refunds r WHERE r.order_no = o.order_no AND r.status IN ("""
    + ", ".join(f"'{s.value}'" for s in IN_FLIGHT)
    + """))
  AND NOT EXISTS ("""
    + LIVE_LINES.format(orders="l.order_no = o.order_no")
    + """)
ON CONFLICT (order_no) DO NOTHING
"""
)
# One order, bound as :order_no.
QUEUE_ORDER = _QUEUE.format(orders="o.order_no = :order_no")
# The orders of the lines picked by `{lines}` (over `l`), whose lines stopped being live.
REQUEUE = _QUEUE.format(orders="o.order_no = ANY(ARRAY(SELECT l.order_no FROM settlement_lines l WHERE {lines}))")
