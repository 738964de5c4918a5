"""`python -m ops bench ledger`: postings per second through the real posting code (db/ledger.py, each in
its own unit of work, as an activity posts), once spread over many merchants and once all through one
hot account (escrow), against bare SQL doing the same inserts and balance updates in the same run.

Spread: DEPOSIT_PAID, channel `lb{k}` to merchant `lm{k}`'s deposit, k cycling over `--merchants`, so
concurrent postings rarely share a row. Hot: PAYMENT_CAPTURED, channel `lb{k}` to `platform:escrow`, so
every posting queues for the one escrow row and the time it is held is what limits the rate.

The real path uses the worker's engine (no pool ping) and event loop (uvloop where installed). The
baseline is raw psycopg (no ORM, no pool), one statement a posting (balance updates, entry, lines) and its
commit, into scratch copies of the three tables on the same server, on the same loop. Only PostgreSQL is
started: the ledger needs nothing else.
"""

from __future__ import annotations

import json
import shutil
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path

import psycopg
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from db import ledger
from db.engine import make_session_factory, make_worker_engine, unit_of_work
from db.migrate import upgrade
from domain import accounts
from domain import ledger as rules
from domain.ledger import Posting
from ops.bench.common import percentile, run_pool
from ops.bench.servers import failed, say
from ops.embedded import EmbeddedPostgres, free_port
from workflows.client.loop import run_on_worker_loop

CURRENCY = "CNY"
SCRATCH = {"accounts": "bench_ledger_accounts", "entries": "bench_journal_entries", "lines": "bench_journal_lines"}
_CREATE = [
    f"CREATE TABLE {SCRATCH['accounts']} (LIKE ledger_accounts INCLUDING ALL)",
    f"CREATE TABLE {SCRATCH['entries']} (LIKE journal_entries INCLUDING ALL)",
    f"CREATE TABLE {SCRATCH['lines']} (LIKE journal_lines INCLUDING ALL)",
]
# The balance updates (in account id order), the entry and its lines with the balance after each.
_BARE = f"""
WITH moved AS (
    UPDATE {SCRATCH["accounts"]} a SET balance_minor = a.balance_minor + d.delta
    FROM unnest(%(ids)s::bigint[], %(deltas)s::bigint[]) AS d(id, delta) WHERE a.id = d.id
    RETURNING a.id, a.balance_minor
), entry AS (
    INSERT INTO {SCRATCH["entries"]} (tx_code, idempotency_key, reference, currency, content_hash)
    VALUES (%(code)s, %(key)s, %(reference)s, %(currency)s, %(hash)s) RETURNING id
)
INSERT INTO {SCRATCH["lines"]} (entry_id, account_id, side, amount_minor, balance_after_minor)
SELECT entry.id, moved.id, l.side, l.amount, moved.balance_minor
FROM entry, moved JOIN unnest(%(line_ids)s::bigint[], %(sides)s::text[], %(amounts)s::bigint[]) AS l(id, side, amount)
     ON l.id = moved.id
"""


@dataclass(frozen=True)
class Run:
    postings: int
    seconds: float
    latencies: list[float]
    cpu_seconds: float  # this process's (the client's), which bounds the rate on a small machine whatever the load

    @property
    def per_second(self) -> float:
        return self.postings / self.seconds

    def p99_ms(self) -> float:
        return percentile(self.latencies, 99) * 1000

    def cpu_us(self) -> float:
        return self.cpu_seconds / self.postings * 1e6


def _posting(kind: str, i: int, merchants: int, tag: str) -> Posting:
    k = i % merchants
    key, ref = f"bench-{kind}-{tag}-{i}", f"bench-{i}"
    amount = 100 + i % 997  # odd amounts; every posting only adds to the balances it touches
    if kind == "hot":
        return rules.payment_captured(key, ref, CURRENCY, amount, f"lb{k}")
    return rules.deposit_paid(key, ref, CURRENCY, amount, f"lb{k}", f"lm{k}")


async def _timed(job: Callable[[], Awaitable[None]]) -> float:
    started = time.perf_counter()
    await job()
    return time.perf_counter() - started


async def _real(
    sessions: async_sessionmaker[AsyncSession], kind: str, n: int, writers: int, merchants: int, tag: str = "real"
) -> Run:
    async def one(i: int) -> float:
        async def post() -> None:
            async with unit_of_work(sessions) as session:
                await ledger.post(session, _posting(kind, i, merchants, tag))

        return await _timed(post)

    cpu = time.process_time()
    latencies, wall = await run_pool(n, writers, one)
    return Run(n, wall, latencies, time.process_time() - cpu)


async def _bare(url: str, ids: dict[str, int], kind: str, n: int, writers: int, merchants: int) -> Run:
    conns = [await psycopg.AsyncConnection.connect(url) for _ in range(writers)]
    free = list(conns)

    async def one(i: int) -> float:
        p = _posting(kind, i, merchants, "bare")
        deltas: dict[int, int] = {}
        for ln in p.lines:
            aid = ids[ln.account]
            spec = accounts.account_spec(ln.account)
            deltas[aid] = deltas.get(aid, 0) + accounts.signed_delta(spec, ln.side, ln.amount_minor)
        params = {
            "ids": sorted(deltas),
            "deltas": [deltas[a] for a in sorted(deltas)],
            "code": p.code.value,
            "key": p.idempotency_key,
            "reference": p.reference,
            "currency": p.currency,
            "hash": p.content_hash(),
            "line_ids": [ids[ln.account] for ln in p.lines],
            "sides": [ln.side.value for ln in p.lines],
            "amounts": [ln.amount_minor for ln in p.lines],
        }
        conn = free.pop()
        try:

            async def post() -> None:
                await conn.execute(_BARE, params, prepare=True)
                await conn.commit()

            return await _timed(post)
        finally:
            free.append(conn)

    try:
        cpu = time.process_time()
        latencies, wall = await run_pool(n, writers, one)
        cpu = time.process_time() - cpu
    finally:
        for conn in conns:
            await conn.close()
    return Run(n, wall, latencies, cpu)


async def _bench(url: str, postings: int, writers: int, merchants: int) -> dict[str, object]:
    engine = make_worker_engine(url, pool_size=writers)  # the worker's, as the activities that post use
    sessions = make_session_factory(engine)
    try:
        say(f"opening the accounts of {merchants} channels and merchants (one posting each, not measured)")
        for kind in ("spread", "hot"):
            await _real(sessions, kind, merchants, writers, merchants, tag="warm")  # warm-up: accounts, pool, caches
        async with engine.begin() as conn:
            for statement in _CREATE:
                await conn.execute(text(statement))
            await conn.execute(text(f"INSERT INTO {SCRATCH['accounts']} SELECT * FROM ledger_accounts"))
            rows = (await conn.execute(text("SELECT code, id FROM ledger_accounts"))).tuples().all()
            ids: dict[str, int] = {str(code): int(aid) for code, aid in rows}
        bare_url = url.replace("postgresql+psycopg://", "postgresql://")
        runs: dict[str, Run] = {}
        for kind in ("spread", "hot"):
            say(f"{kind}: {postings} postings through db/ledger.py, {writers} writers")
            runs[kind] = await _real(sessions, kind, postings, writers, merchants)
            say(f"{kind}: {postings} postings as bare SQL, {writers} writers")
            runs[f"bare_{kind}"] = await _bare(bare_url, ids, kind, postings, writers, merchants)
        async with unit_of_work(sessions) as session:
            balance = await ledger.trial_balance(session)
        if not balance["balanced"]:
            raise RuntimeError(f"the ledger does not balance after the bench: {balance['problems']}")
    finally:
        await engine.dispose()
    summary: dict[str, object] = {}
    for kind in ("spread", "hot"):
        real, bare = runs[kind], runs[f"bare_{kind}"]
        summary |= {
            f"{kind}_per_s": round(real.per_second, 1),
            f"{kind}_p99_ms": round(real.p99_ms(), 2),
            f"{kind}_bare_per_s": round(bare.per_second, 1),
            f"{kind}_bare_p99_ms": round(bare.p99_ms(), 2),
            f"{kind}_ratio_vs_bare": round(real.per_second / bare.per_second, 3),
            f"{kind}_client_cpu_us": round(real.cpu_us()),
            f"{kind}_bare_client_cpu_us": round(bare.cpu_us()),
        }
    return summary | {"postings": postings, "writers": writers, "merchants": merchants}


def run(postings: int, writers: int, merchants: int) -> int:
    if postings < 1 or writers < 1 or merchants < 1:
        print("--postings, --writers and --merchants must be at least 1", file=sys.stderr)
        return 2
    root = Path(tempfile.mkdtemp(prefix="bench-ledger-"))
    # Throwaway cluster (fsync off), as the other benchmarks: the baseline runs on the very same one.
    postgres = EmbeddedPostgres(root / "postgres", free_port(), durable=False)
    try:
        say(f"starting PostgreSQL (data under {root})")
        url = postgres.start()
        upgrade(url)
        summary = run_on_worker_loop(_bench(url, postings, writers, merchants))
    except (KeyboardInterrupt, Exception) as exc:
        return failed(exc)
    finally:
        postgres.stop()
        shutil.rmtree(root, ignore_errors=True)
    print()
    for kind in ("spread", "hot"):
        print(
            f"{kind + ':':<8} {summary[f'{kind}_per_s']} postings/s, p99 {summary[f'{kind}_p99_ms']} ms; bare SQL "
            f"{summary[f'{kind}_bare_per_s']}/s, p99 {summary[f'{kind}_bare_p99_ms']} ms; "
            f"ratio {summary[f'{kind}_ratio_vs_bare']}; client CPU {summary[f'{kind}_client_cpu_us']} us/posting "
            f"(bare {summary[f'{kind}_bare_client_cpu_us']})"
        )
    print(json.dumps(summary), flush=True)
    return 0
