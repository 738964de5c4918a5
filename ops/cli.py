"""The one operations CLI: `python -m ops ...` (also installed as `backoffice`)."""

from __future__ import annotations

import argparse
import asyncio
import json
import sys

from db.engine import make_engine, make_session_factory, unit_of_work
from domain.providers import DEMO_CATEGORIES
from domain.settings import get_settings


def _database_url() -> str:
    """The configured database, or the embedded one a running `ops dev` started."""
    settings = get_settings()
    if settings.database_url:
        return settings.database_url
    if (settings.data_dir / "postgres" / "data" / "PG_VERSION").exists():
        return f"postgresql+psycopg://postgres@127.0.0.1:{settings.embedded_pg_port}/backoffice"
    sys.exit("BACKOFFICE_DATABASE_URL is not set and no embedded database exists here (start it with `make run`)")


def cmd_dev(_: argparse.Namespace) -> int:
    from ops.dev import run

    return run(get_settings())


def cmd_migrate(args: argparse.Namespace) -> int:
    from db.migrate import upgrade

    upgrade(_database_url(), args.revision)
    print(f"migrated to {args.revision}")
    return 0


def cmd_search_attributes(_: argparse.Namespace) -> int:
    from ops.search_attributes import ensure_registered
    from workflows.client.connection import connect

    async def go() -> list[str]:
        return await ensure_registered(await connect(get_settings()))

    added = asyncio.run(go())
    print(f"registered: {', '.join(added)}" if added else "all search attributes already registered")
    return 0


def cmd_history_export(args: argparse.Namespace) -> int:
    from workflows.client.connection import connect

    async def go() -> str:
        client = await connect(get_settings())
        history = await client.get_workflow_handle(args.workflow_id).fetch_history()
        return history.to_json()

    print(asyncio.run(go()))
    return 0


def cmd_demo(args: argparse.Namespace) -> int:
    from db import demo

    async def go() -> dict[str, object]:
        engine = make_engine(_database_url(), pool_size=1)
        try:
            async with unit_of_work(make_session_factory(engine)) as session:
                if args.what == "merchant":
                    return {
                        "merchant_id": await demo.create_active_merchant(
                            session, name=args.name, category=args.category
                        )
                    }
                return {
                    "provider_ids": await demo.seed_providers(
                        session,
                        args.count,
                        prefix=args.prefix,
                        categories=tuple(args.categories.split(",")),
                        merchant_id=args.merchant,
                    )
                }
        finally:
            await engine.dispose()

    print(json.dumps(asyncio.run(go())))
    return 0


def cmd_bench_orders(args: argparse.Namespace) -> int:
    if args.rate is not None:
        from ops.bench.open_loop import run_open

        return run_open(args.rate, args.seconds)
    from ops.bench.orders import run

    return run(args.count, args.concurrency, args.observability)


def cmd_bench_settlement(args: argparse.Namespace) -> int:
    from ops.bench.settlement import run

    return run(args.orders, args.merchants)


def cmd_bench_console(args: argparse.Namespace) -> int:
    from ops.bench.console import run

    return run(args.orders, args.statements, args.repeats)


def cmd_bench_ledger(args: argparse.Namespace) -> int:
    from ops.bench.ledger import run

    return run(args.postings, args.writers, args.merchants)


def cmd_bench_recon(args: argparse.Namespace) -> int:
    from ops.bench.recon import run

    return run(args.lines, args.explain)


def cmd_stuck(args: argparse.Namespace) -> int:
    from workflows.client.connection import connect
    from workflows.client.stuck import stuck_flows

    async def go() -> list[dict[str, object]]:
        settings = get_settings()
        return await stuck_flows(await connect(settings), settings, limit=args.limit)

    flows = asyncio.run(go())
    for f in flows:
        print(
            f"{f['workflow_id']:<48} {f['stage']:<28} resting {f['resting_seconds']}s "
            f"(SLA {f['sla_seconds']}s, over by {f['overrun_seconds']}s)"
        )
    print(json.dumps({"stuck": len(flows)}))
    return 0


def cmd_chaos(args: argparse.Namespace) -> int:
    from ops.chaos.run import run

    return run(args.kills, args.orders, args.seeded, args.seed)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="ops", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("dev", help="run the whole stack with embedded defaults").set_defaults(func=cmd_dev)
    migrate = sub.add_parser("migrate", help="apply Alembic migrations to BACKOFFICE_DATABASE_URL")
    migrate.add_argument("--revision", default="head")
    migrate.set_defaults(func=cmd_migrate)
    from ops.api_key_cmds import add_parsers as add_api_key_parsers

    add_api_key_parsers(sub, _database_url)
    sub.add_parser("search-attributes", help="register the custom search attributes on TEMPORAL_ADDRESS").set_defaults(
        func=cmd_search_attributes
    )
    stuck = sub.add_parser("stuck", help="running flows resting in their stage longer than it should last")
    stuck.add_argument("--limit", type=int, default=100)
    stuck.set_defaults(func=cmd_stuck)
    demo = sub.add_parser("demo", help="demo data").add_subparsers(dest="what", required=True)
    merchant = demo.add_parser("merchant", help="create an ACTIVE merchant with its ledger accounts")
    merchant.add_argument("--name", default="Demo merchant")
    merchant.add_argument("--category", default="food")
    merchant.set_defaults(func=cmd_demo)
    providers = demo.add_parser("providers", help="register online service providers (the platform's pool by default)")
    providers.add_argument("--count", type=int, default=5)
    providers.add_argument("--prefix", default="prov")
    providers.add_argument("--categories", default=",".join(DEMO_CATEGORIES), help="comma-separated")
    providers.add_argument("--merchant", default=None, help="register them as this merchant's own staff")
    providers.set_defaults(func=cmd_demo)
    history = sub.add_parser("history", help="workflow histories for replay tests").add_subparsers(
        dest="action", required=True
    )
    export = history.add_parser("export", help="print a workflow's history as JSON (for tests/histories/)")
    export.add_argument("workflow_id")
    export.set_defaults(func=cmd_history_export)
    bench = sub.add_parser("bench", help="benchmarks on servers of their own").add_subparsers(
        dest="what", required=True
    )
    bench_orders = bench.add_parser("orders", help="order lifecycles per second, against bare Temporal")
    bench_orders.add_argument("--count", type=int, default=50)
    bench_orders.add_argument("--concurrency", type=int, default=10)
    bench_orders.add_argument("--rate", type=float, default=None, help="open loop: POST /v1/orders per second")
    bench_orders.add_argument("--seconds", type=float, default=30, help="open loop: for how long")
    bench_orders.add_argument(
        "--observability", action="store_true", help="also measure metrics and tracing off against on, in this run"
    )
    bench_orders.set_defaults(func=cmd_bench_orders)
    bench_settlement = bench.add_parser("settlement", help="orders settled per second, against plain SQL")
    bench_settlement.add_argument("--orders", type=int, default=100_000)
    bench_settlement.add_argument("--merchants", type=int, default=100)
    bench_settlement.set_defaults(func=cmd_bench_settlement)
    bench_console = bench.add_parser("console", help="console pages' render time with realistic data")
    bench_console.add_argument("--orders", type=int, default=10_000)
    bench_console.add_argument("--statements", type=int, default=1_000)
    bench_console.add_argument("--repeats", type=int, default=30)
    bench_console.set_defaults(func=cmd_bench_console)
    bench_ledger = bench.add_parser("ledger", help="postings per second (spread, one hot account), against bare SQL")
    bench_ledger.add_argument("--postings", type=int, default=20_000)
    bench_ledger.add_argument("--writers", type=int, default=16)
    bench_ledger.add_argument("--merchants", type=int, default=1000)
    bench_ledger.set_defaults(func=cmd_bench_ledger)
    bench_recon = bench.add_parser("recon", help="statement lines reconciled per second, against plain SQL")
    bench_recon.add_argument("--lines", type=int, default=1_000_000)
    bench_recon.add_argument("--explain", action="store_true", help="print the classification's plan too")
    bench_recon.set_defaults(func=cmd_bench_recon)
    chaos = sub.add_parser("chaos", help="a mixed workload while the worker is killed; checks exactly-once effects")
    chaos.add_argument("--kills", type=int, default=20)
    chaos.add_argument("--orders", type=int, default=12, help="orders through delivery, two refunds each")
    chaos.add_argument("--seeded", type=int, default=4000, help="settleable orders seeded for one settlement cycle")
    chaos.add_argument("--seed", type=int, default=None, help="random seed for the kill moments")
    chaos.set_defaults(func=cmd_chaos)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    result: int = args.func(args)
    return result
