"""The correctness core of `ops bench recon`, small and untimed: a day of a few thousand payments and
refunds seeded set-based, WeChat Pay's bill of that day written by the sandbox's writer with every
discrepancy type planted, one run through the API finding exactly the planted ones and nothing else.

The day is one no other test trades on, so the run's SHORT check sees only the seeded captures. The
seeded rows have no ledger postings (the bench does not measure the ledger); they are removed again
at the end, so the ledger checks after the test see the records as they were.
"""

from __future__ import annotations

from collections import Counter
from datetime import date, datetime
from typing import Any

import pytest
from sqlalchemy import text

from db.engine import unit_of_work
from domain.access import Role
from domain.recon.lines import SHANGHAI, LineKind, Source, StatementLine
from ops.bench.recon_data import SEED, Plan, bill_lines, seed_params
from ops.sandbox.statement_files import write_wechat
from tests.integration.test_recon import discrepancies_of, run_recon
from tests.support.shop import Shop

# Reconciliation parts the channels' records from the ledger on purpose (planted differences, fees booked
# from statements, refunds of differences): the clearing-against-sandbox check does not apply.
pytestmark = pytest.mark.channel_diverges

DAY = date(2026, 10, 15)
CLEANUP = [
    "DELETE FROM refunds WHERE refund_no LIKE 'BR%' AND requested_by = 'bench'",
    "DELETE FROM captures WHERE payment_no LIKE 'BP%' AND ledger_entry_id = 0",
    "DELETE FROM payments WHERE payment_no LIKE 'BP%' AND merchant_id = 'bench-merchant'",
]


async def test_a_bench_day_finds_every_planted_discrepancy_and_nothing_else(shop: Shop, temporal: Any) -> None:
    plan = Plan.for_lines(3000, DAY)
    async with unit_of_work(shop.sessions) as session:
        for statement in SEED:
            await session.execute(text(statement), seed_params(plan))
    try:
        bill = b"".join(write_wechat(bill_lines(plan), "ALL"))
        put = await shop.outside.put(f"/_sandbox/statements/wechat/{DAY}", params={"bill_type": "ALL"}, content=bill)
        assert put.status_code == 200, put.text

        run = await run_recon(shop, temporal, "wechat", DAY)

        assert run["status"] == "MATCHED", run["failure"]
        assert run["lines"] == plan.lines == bill.count(b"\n") - 3  # header, summary header, summary row
        async with unit_of_work(shop.sessions) as session:
            rows = await session.execute(
                text("SELECT type, our_no FROM recon_discrepancies WHERE run_id = :run"), {"run": run["run_id"]}
            )
            recorded = {(str(t), str(n)) for t, n in rows}
        planted = plan.expected()
        assert len(planted) == 7 * plan.per_type  # six types, DUPLICATE_PAYMENT planted two ways
        assert recorded == planted, (sorted(planted - recorded)[:5], sorted(recorded - planted)[:5])
        assert run["counts"] == dict(Counter(t for t, _ in planted))
        # The statement's own totals were checked against its rows and kept beside the platform's.
        assert run["statement_totals"]["count"] == plan.lines
    finally:
        async with unit_of_work(shop.sessions) as session:
            for statement in CLEANUP:
                await session.execute(text(statement))


async def test_numbers_with_copy_s_special_characters_are_loaded_exactly(shop: Shop, temporal: Any) -> None:
    """The loader writes COPY text: a party's value holding a backslash, a tab, a line break or the
    text `\\N` (COPY's NULL) must arrive as written, not as something else or NULL."""
    day = date(2026, 10, 16)
    at = datetime(2026, 10, 16, 12, tzinfo=SHANGHAI)
    numbers = ["ESC\\1", "TAB\t2", "\\N", "NL\n3"]
    lines = [
        StatementLine(Source.WECHAT, LineKind.PAYMENT, 0, no, None, f"42{i}", "SUCCESS", 100, 1000, "CNY", at)
        for i, no in enumerate(numbers)
    ]
    refund = StatementLine(Source.WECHAT, LineKind.REFUND, 0, "RF\\N", "\\N", "429", "SUCCESS", 50, -0, "CNY", at)
    content = b"".join(write_wechat([*lines, refund], "ALL"))
    up = await shop.api.post(
        f"/v1/recon/files?source=wechat&bill_date={day}", content=content, headers=shop.as_(Role.FINANCE)
    )
    assert up.status_code == 201, up.text

    run = await run_recon(shop, temporal, "wechat", day, file_sha256=up.json()["sha256"])

    assert run["status"] == "MATCHED", run["failure"]
    async with unit_of_work(shop.sessions) as session:
        staged = await session.execute(
            text("SELECT our_no, order_ref FROM recon_statement_lines WHERE run_id = :run ORDER BY line_no"),
            {"run": run["run_id"]},
        )
        assert [tuple(r) for r in staged] == [*((no, None) for no in numbers), ("RF\\N", "\\N")]
    found = await discrepancies_of(shop, "wechat", {*numbers, "RF\\N"})
    assert set(found) == {*(("LONG", no) for no in numbers), ("LONG", "RF\\N")}
