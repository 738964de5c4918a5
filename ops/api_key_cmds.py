"""`ops api-key create|list|revoke`: the same key management as the admin API, for bootstrapping."""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

from sqlalchemy.ext.asyncio import AsyncSession

from db.api_keys import issue_key, list_keys, revoke_key
from db.engine import make_engine, make_session_factory, unit_of_work
from domain.access import Role, normalize_person

T = TypeVar("T")


def _in_session(url: str, work: Callable[[AsyncSession], Awaitable[T]]) -> T:
    async def go() -> T:
        engine = make_engine(url, pool_size=1)
        try:
            async with unit_of_work(make_session_factory(engine)) as session:
                return await work(session)
        finally:
            await engine.dispose()

    return asyncio.run(go())


def create(args: argparse.Namespace, url: str) -> int:
    if (args.role == Role.MERCHANT.value) != bool(args.merchant_id):
        sys.exit("--merchant-id is required for, and only for, --role merchant")
    try:
        person = normalize_person(args.person)
    except ValueError as exc:
        sys.exit(f"--person: {exc}")

    async def work(session: AsyncSession) -> dict[str, Any]:
        key_id, key = await issue_key(
            session,
            role=Role(args.role),
            name=args.name or f"cli-{args.role}",
            merchant_id=args.merchant_id,
            person=person,
        )
        return {"key_id": key_id, "role": args.role, "person": person, "merchant_id": args.merchant_id, "key": key}

    print(json.dumps(_in_session(url, work)))
    return 0


def show(args: argparse.Namespace, url: str) -> int:
    async def work(session: AsyncSession) -> list[dict[str, Any]]:
        return await list_keys(session, include_revoked=args.all)

    print(json.dumps(_in_session(url, work), default=str, indent=2))
    return 0


def revoke(args: argparse.Namespace, url: str) -> int:
    async def work(session: AsyncSession) -> dict[str, Any] | None:
        row, _ = await revoke_key(session, args.key_id)
        return None if row is None else {"key_id": row.id, "person": row.person, "revoked_at": str(row.revoked_at)}

    found = _in_session(url, work)
    if found is None:
        sys.exit(f"API key {args.key_id} does not exist")
    print(json.dumps(found))
    return 0


def add_parsers(sub: Any, url: Callable[[], str]) -> None:
    api_key = sub.add_parser("api-key", help="manage API keys").add_subparsers(dest="action", required=True)
    c = api_key.add_parser("create", help="issue a key (printed once)")
    c.add_argument("--role", required=True, choices=[r.value for r in Role])
    c.add_argument("--person", required=True, help="who holds the key (maker-checker compares people)")
    c.add_argument("--merchant-id")
    c.add_argument("--name")
    c.set_defaults(func=lambda a: create(a, url()))
    ls = api_key.add_parser("list", help="keys and their people (never the keys themselves)")
    ls.add_argument("--all", action="store_true", help="include revoked keys")
    ls.set_defaults(func=lambda a: show(a, url()))
    rv = api_key.add_parser("revoke", help="revoke a key (refused from the next request on)")
    rv.add_argument("key_id", type=int)
    rv.set_defaults(func=lambda a: revoke(a, url()))
