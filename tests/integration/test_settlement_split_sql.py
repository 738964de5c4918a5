"""The settlement split computed in SQL (db/settlement_sql.py, what a cycle's claim statement writes
lines with) equals domain/commission.py's `split` to the minor unit, on random orders run through the
test PostgreSQL: amounts up to 10^12, any rate, floors and caps (absent, null or either way round),
partial and full refunds, with, without and with an empty promoter."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import Connection, create_engine, text

from db.settlement_sql import SPLIT, SPLIT_COLUMNS
from domain.commission import split

# The orders as the claim statement sees them: one row `o` with the order's snapshot columns.
_SQL = text(f"""
SELECT {SPLIT_COLUMNS}
FROM unnest(CAST(:paid AS bigint[]), CAST(:refunded AS bigint[]), CAST(:bps AS int[]),
            CAST(:snapshot AS jsonb[]), CAST(:promoter AS text[]), CAST(:promoter_bps AS int[]))
     WITH ORDINALITY AS o(paid_minor, refunded_minor, commission_bps, commission_snapshot, promoter_id,
                          promoter_bps, i)
{SPLIT}
ORDER BY o.i
""")

_limit = st.one_of(st.none(), st.integers(0, 10**6), st.integers(0, 10**12))


@st.composite
def _order(draw: st.DrawFn) -> dict[str, Any]:
    paid = draw(st.one_of(st.integers(0, 100_000), st.integers(0, 10**12)))
    refunded = draw(st.one_of(st.just(0), st.just(paid), st.integers(0, paid)))
    snapshot: dict[str, Any] = {"rule_id": "r", "rate_bps": 0}
    for key in ("floor_minor", "cap_minor"):
        choice = draw(st.sampled_from(["absent", "null", "value"]))
        if choice != "absent":
            snapshot[key] = draw(_limit) if choice == "value" else None
    return {
        "paid": paid,
        "refunded": refunded,
        "bps": draw(st.one_of(st.sampled_from([0, 1, 150, 333, 3333, 5000, 9999, 10_000]), st.integers(0, 10_000))),
        "snapshot": snapshot,
        "promoter": draw(st.sampled_from([None, "", "prom-1"])),
        "promoter_bps": draw(st.one_of(st.just(0), st.integers(0, 10_000))),
    }


def _domain(o: dict[str, Any]) -> tuple[int, int, int]:
    """What the cycle wrote before the split moved into SQL (the old per-order Python loop)."""
    snap = o["snapshot"]
    s = split(
        o["paid"],
        o["refunded"],
        rate_bps=o["bps"],
        floor_minor=snap.get("floor_minor"),
        cap_minor=snap.get("cap_minor"),
        promoter_bps=o["promoter_bps"] if o["promoter"] else 0,
    )
    return s.commission_minor, s.promoter_minor, s.merchant_net_minor


@pytest.fixture(scope="module")
def conn(database_url: str) -> Iterator[Connection]:
    engine = create_engine(database_url)
    with engine.connect() as c:
        yield c
    engine.dispose()


def test_sql_split_equals_the_domain_split_on_random_orders(conn: Connection) -> None:
    @settings(
        max_examples=300,
        deadline=None,
        derandomize=True,
        database=None,
        suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
    )
    @given(orders=st.lists(_order(), min_size=1, max_size=40))
    def agree(orders: list[dict[str, Any]]) -> None:
        rows = conn.execute(
            _SQL,
            {
                "paid": [o["paid"] for o in orders],
                "refunded": [o["refunded"] for o in orders],
                "bps": [o["bps"] for o in orders],
                "snapshot": [json.dumps(o["snapshot"]) for o in orders],
                "promoter": [o["promoter"] for o in orders],
                "promoter_bps": [o["promoter_bps"] for o in orders],
            },
        ).all()
        got = [tuple(int(v) for v in row) for row in rows]
        assert got == [_domain(o) for o in orders]

    agree()
