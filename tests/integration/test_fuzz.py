"""A property-based fuzzer over the OpenAPI schema: every operation, with every role's key (and none).

No answer is a 5xx, every status is documented for its operation, and every body has the documented
content type and conforms to its documented schema. Fuzzing revokes keys, approves statements, starts
cycles and moves money, so it runs on a stack of its own (its own PostgreSQL, Temporal dev server,
sandbox, worker and API): the fixtures below replace the session stack for this module only, so the
ledger invariants checked after every integration test are checked on what the fuzzer did.

`BACKOFFICE_FUZZ_EXAMPLES` (examples per operation, role and mode) searches longer than the default.
"""

from __future__ import annotations

import os
import time
from collections import Counter
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass
from functools import partial
from typing import Any

import httpx
import pytest
import requests
import schemathesis
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st
from hypothesis.errors import Unsatisfiable
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.core.result import Err
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from db.api_keys import issue_key
from db.demo import create_active_merchant, fund_merchant, record_verified_bank_account, seed_settleable_orders
from db.engine import make_engine, make_session_factory, unit_of_work
from db.migrate import upgrade
from domain.access import Role
from domain.crypto import FieldCipher
from domain.settings import Settings
from ops.embedded import EmbeddedPostgres, EmbeddedTemporal, free_port
from tests.support.stack import Services, start_services

EXAMPLES = int(os.environ.get("BACKOFFICE_FUZZ_EXAMPLES", "5"))
CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance, response_schema_conformance]
MERCHANT = "m-fuzz"


@dataclass(frozen=True)
class Seeded:
    keys: dict[str, str]  # role -> key
    known: dict[str, list[Any]]  # path parameter -> seeded values the fuzzer also aims at


# ---- a stack of this module's own (the names override the session fixtures of tests/conftest.py) ----
@pytest.fixture(scope="module")
def database_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    # Always embedded, even when the suite uses servers of its own: a shared database would see the
    # fuzzer's revocations and decisions.
    pg = EmbeddedPostgres(tmp_path_factory.mktemp("fuzz-postgres"), free_port(), durable=False)
    url = pg.start()
    try:
        upgrade(url)
        yield url
    finally:
        pg.stop()


@pytest.fixture(scope="module")
def temporal_address(database_url: str) -> Iterator[str]:
    temporal = EmbeddedTemporal(free_port(), ui_port=None, db_file=None)
    try:
        yield temporal.start()
    finally:
        temporal.stop()


@pytest.fixture(scope="module")
def services(database_url: str, temporal_address: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Services]:
    yield from start_services(database_url, temporal_address, tmp_path_factory.mktemp("fuzz-stack"))


@pytest.fixture(scope="module")
async def sessions(database_url: str) -> AsyncIterator[async_sessionmaker[AsyncSession]]:
    engine = make_engine(database_url, pool_size=5)
    yield make_session_factory(engine)
    await engine.dispose()


@pytest.fixture(scope="module")
async def seeded(sessions: async_sessionmaker[AsyncSession], services: Services) -> Seeded:
    """One key per role, issued after ten keys nobody uses: DELETE /v1/api-keys/{key_id} with the small
    ids the fuzzer favours revokes those first. Also an active, funded merchant with settleable orders
    (statement 1 is theirs once the fuzzer has run a cycle)."""
    async with unit_of_work(sessions) as session:
        for i in range(10):
            await issue_key(session, role=Role.OPERATOR, name=f"spare-{i}", person=f"spare-{i}")
        keys = {}
        for role in Role:
            merchant_id = MERCHANT if role is Role.MERCHANT else None
            _, keys[role.value] = await issue_key(
                session, role=role, name=f"fuzz-{role.value}", merchant_id=merchant_id, person=f"fuzz-{role.value}"
            )
        await create_active_merchant(session, merchant_id=MERCHANT)
        await record_verified_bank_account(session, MERCHANT, FieldCipher(Settings().field_encryption_key))
        await fund_merchant(session, MERCHANT, 1_000_000)
        orders = await seed_settleable_orders(session, MERCHANT, 3, amount_minor=10_000, prefix="FUZZ", captures=True)
    known: dict[str, list[Any]] = {"merchant_id": [MERCHANT], "code": ["food"], "order_no": orders}
    known |= {"statement_id": [1], "key_id": [1]}
    return Seeded(keys, known)


def _strategy(operation: Any, mode: GenerationMode, seeded: Seeded) -> Any:
    """Generated cases, and as many again aimed at the seeded records where the path names one."""
    generated = operation.as_strategy(generation_mode=mode)
    names = {p.name for p in operation.path_parameters}
    known = {name: seeded.known[name] for name in names if name in seeded.known}
    if not known or mode is GenerationMode.NEGATIVE:
        return generated
    aimed = st.fixed_dictionaries({name: st.sampled_from(values) for name, values in known.items()}).flatmap(
        lambda values: operation.as_strategy(generation_mode=mode, path_parameters=values)
    )
    return st.one_of(generated, aimed)


def _fuzz(operation: Any, mode: GenerationMode, seeded: Seeded, call: Callable[[Any], None]) -> None:
    @settings(
        max_examples=EXAMPLES,
        deadline=None,
        derandomize=True,  # the same cases on every run: CI does not flake on a new seed
        database=None,
        phases=[Phase.explicit, Phase.generate],  # no shrinking: the first failing case is reported as is
        suppress_health_check=list(HealthCheck),
    )
    @given(case=_strategy(operation, mode, seeded))
    def run(case: Any) -> None:
        call(case)

    run()


def test_every_operation_answers_as_documented_for_every_role(
    services: Services, seeded: Seeded, capsys: pytest.CaptureFixture[str]
) -> None:
    raw = httpx.get(f"{services.api_url}/openapi.json").json()
    schema = schemathesis.openapi.from_dict(raw)
    operations = []
    for result in schema.get_all_operations():
        if isinstance(result, Err):  # an operation the schema describes so badly that no case can be made
            raise result.err()
        operations.append(result.ok())
    # Revocations last, and the admin's (which may revoke the fuzzer's own keys) very last.
    operations.sort(key=lambda op: op.method.upper() == "DELETE")
    callers: list[tuple[str, str | None]] = [("anonymous", None), *seeded.keys.items()]
    http = requests.Session()
    answered: Counter[str] = Counter()  # by status class, to show how deep the cases got
    failures: list[str] = []

    def call(case: Any, key: str | None) -> None:
        headers = dict(case.headers or {})
        if key is not None:
            headers["Authorization"] = f"Bearer {key}"
        case.headers = headers
        response = case.call(base_url=services.api_url, session=http, timeout=60)
        answered[f"{response.status_code // 100}xx"] += 1
        case.validate_response(response, checks=CHECKS)

    started = time.monotonic()
    for operation in operations:
        for role, key in callers:
            for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE):
                try:
                    _fuzz(operation, mode, seeded, partial(call, key=key))
                except Unsatisfiable:
                    assert mode is GenerationMode.NEGATIVE  # nothing to get wrong (no parameters, no body)
                # Collect every operation's findings, not only the first (schemathesis raises a group of them).
                except (Exception, BaseExceptionGroup) as exc:
                    failures.append(f"{operation.label} as {role} ({mode.value}): {exc}")
    elapsed = time.monotonic() - started
    with capsys.disabled():
        spread = ", ".join(f"{cls}: {n}" for cls, n in sorted(answered.items()))
        print(f"\nfuzzed {answered.total()} requests over {len(operations)} operations in {elapsed:.1f}s ({spread})")
    assert not failures, "\n\n".join(failures)
