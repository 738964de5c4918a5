"""The API skeleton over real HTTP: health, authentication, roles, API keys, trial balance."""

from __future__ import annotations

from sqlalchemy import select

from db.engine import unit_of_work
from db.ledger_checks import ledger_disagreements
from db.models import AuditEvent
from domain.access import Role
from tests.support.shop import bearer


def assert_problem(response, status: int, *, says: str) -> None:  # type: ignore[no-untyped-def]
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    body = response.json()
    assert body["status"] == status and says in body["detail"], body


async def test_health_reports_database_and_temporal(api):
    r = await api.get("/health")
    assert r.status_code == 200
    assert r.json() == {"status": "ok", "database": "ok", "temporal": "ok"}


async def test_openapi_is_served(api):
    r = await api.get("/openapi.json")
    assert r.status_code == 200 and "/v1/api-keys" in r.json()["paths"]


async def test_missing_unknown_and_malformed_keys_are_401(api):
    assert_problem(await api.get("/v1/ledger/trial-balance"), 401, says="missing API key")
    assert_problem(await api.get("/v1/ledger/trial-balance", headers=bearer("bo_nope")), 401, says="unknown")
    assert_problem(
        await api.get("/v1/ledger/trial-balance", headers={"Authorization": "Basic abc"}), 401, says="missing API key"
    )


async def test_a_wrong_role_is_403(api, keys):
    assert_problem(await api.get("/v1/ledger/trial-balance", headers=bearer(keys[Role.SERVICE])), 403, says="service")
    assert_problem(
        await api.post(
            "/v1/api-keys", json={"role": "finance", "name": "x", "person": "x"}, headers=bearer(keys[Role.FINANCE])
        ),
        403,
        says="finance",
    )


async def test_trial_balance_for_finance(api, keys, sessions):
    r = await api.get("/v1/ledger/trial-balance", headers=bearer(keys[Role.FINANCE]))
    assert r.status_code == 200
    body = r.json()
    assert body["balanced"] is True and body["problems"] == []
    # Beside it, the ledger against the business records: what the checks find in the database now
    # (tests that post raw postings on purpose may have left an escrow offset on this stack).
    async with unit_of_work(sessions) as session:
        found = sorted(await ledger_disagreements(session))
    assert body["disagreements"] == found and body["records_agree"] is (not found)


async def test_admin_issues_a_key_that_works_and_the_decision_is_audited(api, keys, sessions):
    r = await api.post(
        "/v1/api-keys",
        json={"role": "finance", "person": "alice@example.com", "name": "alice"},
        headers=bearer(keys[Role.ADMIN]),
    )
    assert r.status_code == 201, r.text
    issued = r.json()
    assert issued["role"] == "finance" and issued["person"] == "alice@example.com" and issued["key"].startswith("bo_")
    ok = await api.get("/v1/ledger/trial-balance", headers=bearer(issued["key"]))
    assert ok.status_code == 200
    async with unit_of_work(sessions) as session:
        events = (
            (
                await session.execute(
                    select(AuditEvent).where(
                        AuditEvent.action == "api_key.created", AuditEvent.subject_id == str(issued["id"])
                    )
                )
            )
            .scalars()
            .all()
        )
    assert len(events) == 1 and events[0].details["name"] == "alice" and events[0].role == "admin"
    assert events[0].details["person"] == "alice@example.com"


async def test_bad_api_key_requests_are_422_with_reasons_and_create_nothing(api, keys, sessions):
    admin = bearer(keys[Role.ADMIN])
    async with unit_of_work(sessions) as session:
        before = len((await session.execute(select(AuditEvent))).scalars().all())
    cases = [
        ({"role": "superuser", "name": "x", "person": "p"}, "role"),
        ({"role": "merchant", "name": "x", "person": "p"}, "needs merchant_id"),
        ({"role": "finance", "name": "x", "person": "p", "merchant_id": "m1"}, "only a merchant key"),
        ({"role": "finance", "name": "", "person": "p"}, "name"),
        ({"role": "finance", "person": "p"}, "name"),
        ({"role": "finance", "name": "x"}, "person"),
        ({"role": "finance", "name": "x", "person": "no spaces"}, "person"),
    ]
    for body, says in cases:
        assert_problem(await api.post("/v1/api-keys", json=body, headers=admin), 422, says=says)
    r = await api.post("/v1/api-keys", content=b"{not json", headers={**admin, "content-type": "application/json"})
    assert r.status_code == 422 and r.headers["content-type"].startswith("application/problem+json")
    async with unit_of_work(sessions) as session:
        assert len((await session.execute(select(AuditEvent))).scalars().all()) == before


async def test_unknown_routes_are_problem_json(api):
    assert_problem(await api.get("/v1/nothing-here"), 404, says="Not Found")
