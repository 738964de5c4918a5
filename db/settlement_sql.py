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
# checks (an approved statement has marked the order settled, which takes it out of the queue). The line is
# the whole claim: the order row is not written until its statement is approved (one update, instead of a
# claim update and a settle update, each rewriting every index on `orders`). `{orders}` picks the lines.
LIVE_LINES = """
SELECT l.order_no, l.cycle_id FROM settlement_lines l
JOIN settlement_cycles c ON c.id = l.cycle_id AND c.status <> 'FAILED'
WHERE {orders}
  AND NOT EXISTS (SELECT 1 FROM settlement_statements s
                  WHERE s.cycle_id = l.cycle_id AND s.merchant_id = l.merchant_id AND s.status = 'REJECTED')
"""

# A page of the queue after the page before's last order (:after_at, :after_no), and which of them are
# locked, with the row lock refunds.open takes on the order, to be claimed. Claimed orders stay in the
# queue's index until they are settled, so each page starts where the last one stopped instead of walking
# past every order the cycle has claimed; `queued` is spelled as the partial index
# ix_orders_settlement_queue is, so the planner walks it in order and stops after a page. Orders a live
# line claims (another cycle's, waiting for finance) or a refund is in flight on are not locked: they
# are found for the whole page at once (one index scan over its sorted order numbers, one hash), where a
# lookup per order cost a page four index pages an order, twice (at 1M orders those probes made a page
# 60 % dearer than at 100k). Orders a refund is being opened on right now are skipped (SKIP LOCKED).
# What is locked here is only a candidate: CLAIM_AND_WRITE decides (see there).
LOCK_CANDIDATES = f"""
WITH queued AS MATERIALIZED (
    SELECT o.order_no, o.settleable_at FROM orders o
    WHERE o.settleable AND NOT o.settled AND o.settlement_cycle IS NULL AND o.settleable_at <= :cutoff
      AND (o.settleable_at, o.order_no) > (:after_at, :after_no)
    ORDER BY o.settleable_at, o.order_no
    LIMIT :page_size
), live AS MATERIALIZED ({LIVE_LINES.format(orders="l.order_no = ANY(ARRAY(SELECT order_no FROM queued))")}
), locked AS MATERIALIZED (
    SELECT o.order_no FROM orders o
    WHERE o.order_no = ANY(ARRAY(SELECT q.order_no FROM queued q
                                 WHERE NOT EXISTS (SELECT 1 FROM live WHERE live.order_no = q.order_no)))
      AND o.settleable AND NOT o.settled AND o.settlement_cycle IS NULL
      AND NOT EXISTS (SELECT 1 FROM refunds r WHERE r.order_no = o.order_no AND r.status = ANY(:in_flight))
    FOR UPDATE OF o SKIP LOCKED
)
SELECT q.order_no, q.settleable_at, q.order_no IN (SELECT order_no FROM locked) AS locked  -- a hashed subplan
FROM queued q
ORDER BY q.settleable_at, q.order_no
"""

# Write the locked candidates' lines, which claims them: an order is claimable when no refund is in
# flight on it and no live line claims it already. It is a statement of its own (not part of
# LOCK_CANDIDATES) on purpose: its snapshot, taken after the locks were granted, sees every refund and
# every other cycle's line committed before, so an order a refund was opened on (or another cycle claimed)
# just before stays out of the cycle. The page's live lines are found in one index scan over the sorted
# order numbers and anti-joined by hash (a lookup per order cost four index pages each). Lines are
# unique per cycle and order; no conflict can arise (this cycle's lines are live until it is
# aggregated, after which it claims nothing), so a plain INSERT: ON CONFLICT would pre-check both
# unique indexes for every line.
CLAIM_AND_WRITE = f"""
WITH live AS MATERIALIZED ({LIVE_LINES.format(orders="l.order_no = ANY(:order_nos)")})
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
    WHERE o.order_no = ANY(:order_nos) AND NOT o.settled AND o.settlement_cycle IS NULL
      AND NOT EXISTS (SELECT 1 FROM refunds r WHERE r.order_no = o.order_no AND r.status = ANY(:in_flight))
      AND NOT EXISTS (SELECT 1 FROM live WHERE live.order_no = o.order_no)
) o {SPLIT}
"""

# The cycle whose line claims one order (bound as :order_no), if any.
CLAIMING_CYCLE = "SELECT cycle_id FROM (" + LIVE_LINES.format(orders="l.order_no = :order_no") + ") live LIMIT 1"

# An approved statement settles its orders: the one write of a settlement to an order row. The lines'
# order numbers go in as an array so the orders are found by their key; as `IN (subquery)` the planner
# hash-joins a statement's lines against a scan of every order (7x slower with 100,000 orders).
SETTLE_ORDERS = """
UPDATE orders SET settled = true, settlement_cycle = :cycle_id, updated_at = now()
WHERE order_no = ANY(ARRAY(SELECT l.order_no FROM settlement_lines l
                           WHERE l.cycle_id = :cycle_id AND l.merchant_id = :merchant_id))
  AND NOT settled
"""
