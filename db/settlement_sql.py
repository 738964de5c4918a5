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

# A page of the queue after the page before's last order (:after_at, :after_no), locked to be claimed.
# The lock is the queue row's, which refunds.open takes too (QUEUED_LOCK): a refund being opened right now
# keeps its order out of the page (SKIP LOCKED), and a refund that comes after waits for the page to
# commit and then finds the order claimed. The queue holds exactly the orders no live line claims, so
# the order row is neither read nor locked here. Rows a claim deleted stay in the queue's index until
# vacuumed, so each page starts where the last one stopped. What is locked here is only a candidate:
# CLAIM_AND_WRITE decides (see there).
LOCK_CANDIDATES = """
SELECT q.order_no, q.settleable_at FROM settlement_queue q
WHERE q.settleable_at <= :cutoff AND (q.settleable_at, q.order_no) > (:after_at, :after_no)
ORDER BY q.settleable_at, q.order_no
LIMIT :page_size
FOR UPDATE SKIP LOCKED
"""

# Taken by refunds.open under the order's row lock, before it reads whether a line claims the order: it
# waits for a claim page holding the order's queue row, and then finds the row gone and the line there.
QUEUED_LOCK = "SELECT 1 FROM settlement_queue WHERE order_no = :order_no FOR UPDATE"

# Take the locked candidates out of the queue and write their lines, which claims them: an order is
# claimable when no refund is in flight on it and it is still queued. It is a statement of its own (not
# part of LOCK_CANDIDATES) on purpose: its snapshot, taken after the locks were granted, sees every refund
# committed before, so an order a refund was opened on just before stays out of the cycle (and queued).
# Deleting the queue row is the claim: of two cycles claiming at once, one deletes it and the other finds
# it gone, so an order never gets two live lines. Lines are unique per cycle and order; no conflict can
# arise, so a plain INSERT: ON CONFLICT would pre-check both unique indexes for every line.
CLAIM_AND_WRITE = f"""
WITH claimed AS (
    DELETE FROM settlement_queue q
    WHERE q.order_no = ANY(:order_nos)
      AND NOT EXISTS (SELECT 1 FROM refunds r WHERE r.order_no = q.order_no AND r.status = ANY(:in_flight))
    RETURNING q.order_no
)
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
"""

# The cycle whose live line claims (or settled) one order (bound as :order_no), if any, and whether its
# statement was approved.
SETTLEMENT_OF = (
    "SELECT live.cycle_id, EXISTS (SELECT 1 FROM settlement_statements s WHERE s.cycle_id = live.cycle_id"
    " AND s.merchant_id = live.merchant_id AND s.status = 'APPROVED') AS settled FROM ("
    + LIVE_LINES.format(orders="l.order_no = :order_no")
    + ") live LIMIT 1"
)

# Orders whose lines (picked by `{lines}`, over `l`) stopped being live go back to the queue: unless
# another live line claims them (which cannot be, as a queued order is claimed by none, but a failed
# cycle's release must never queue an order twice over).
REQUEUE = (
    """
INSERT INTO settlement_queue (order_no, settleable_at)
SELECT o.order_no, o.settleable_at FROM orders o
WHERE o.order_no = ANY(ARRAY(SELECT l.order_no FROM settlement_lines l WHERE {lines}))
  AND NOT EXISTS ("""
    + LIVE_LINES.format(orders="l.order_no = o.order_no")
    + """)
ON CONFLICT (order_no) DO NOTHING
"""
)
