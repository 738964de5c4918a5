"""The console over HTTP: signing in and out, the session cookie, CSRF on every form, roles exactly as
the API's, refusals shown with the API's reason, no clear identity or bank number on any page."""

from __future__ import annotations

import re
import uuid

import httpx
from sqlalchemy import func, select

from db.api_keys import issue_key, revoke_key
from db.engine import unit_of_work
from db.models import ConsoleSession
from domain.access import Role
from tests.support.shop import Shop, apply_merchant, onboarding_reaches


async def signed_in(shop: Shop, key: str) -> httpx.AsyncClient:
    """A browser-like client (cookies kept) signed in with `key`."""
    client = httpx.AsyncClient(base_url=shop.services.api_url, timeout=30)
    form = await client.get("/console/sign-in")
    pre = re.search(r'name="pre" value="([^"]+)"', form.text)
    assert form.status_code == 200 and pre, form.text
    r = await client.post("/console/sign-in", data={"api_key": key, "pre": pre.group(1)})
    assert r.status_code == 303 and r.headers["location"] == "/console", r.text
    return client


def csrf_of(html: str) -> str:
    found = re.search(r'name="csrf" value="([^"]+)"', html)
    assert found, html
    return found.group(1)


async def sessions(shop: Shop) -> int:
    async with unit_of_work(shop.sessions) as session:
        return int(await session.scalar(select(func.count()).select_from(ConsoleSession)) or 0)


async def test_signing_in_sets_a_strict_cookie_and_signing_out_ends_the_session(shop):
    anonymous = httpx.AsyncClient(base_url=shop.services.api_url, timeout=30)
    r = await anonymous.get("/console/finance")
    assert r.status_code == 303 and r.headers["location"] == "/console/sign-in"
    # Sign-in without the form's own token (a cross-site post) or with an unknown key changes nothing.
    before = await sessions(shop)
    forged = await anonymous.post("/console/sign-in", data={"api_key": shop.keys[Role.FINANCE], "pre": "x"})
    assert forged.status_code == 403
    form = await anonymous.get("/console/sign-in")
    pre = re.search(r'name="pre" value="([^"]+)"', form.text).group(1)  # type: ignore[union-attr]
    wrong = await anonymous.post("/console/sign-in", data={"api_key": "bo_not-a-key", "pre": pre})
    assert wrong.status_code == 401 and await sessions(shop) == before

    client = await signed_in(shop, shop.keys[Role.FINANCE])
    cookie = next(c for c in client.cookies.jar if c.name == "bo_console")
    assert cookie.path == "/console" and cookie.expires is not None
    assert cookie.has_nonstandard_attr("HttpOnly") and cookie.get_nonstandard_attr("SameSite") == "strict"
    assert await sessions(shop) == before + 1
    page = await client.get("/console/finance")
    assert (page.status_code == 200 and 'id="queue"' in page.text) or "Nothing is waiting" in page.text
    # Signing out is a form too: without the token it is refused and the session lives on.
    assert (await client.post("/console/sign-out", data={})).status_code == 403
    assert (await client.get("/console/finance")).status_code == 200
    out = await client.post("/console/sign-out", data={"csrf": csrf_of(page.text)})
    assert out.status_code == 303 and await sessions(shop) == before
    assert (await client.get("/console/finance")).status_code == 303


async def test_a_revoked_key_ends_its_console_session(shop):
    async with unit_of_work(shop.sessions) as session:
        key_id, key = await issue_key(session, role=Role.FINANCE, name=f"carol-{uuid.uuid4().hex[:6]}")
    client = await signed_in(shop, key)
    assert (await client.get("/console/ledger")).status_code == 200
    async with unit_of_work(shop.sessions) as session:
        await revoke_key(session, key_id)
    assert (await client.get("/console/ledger")).status_code == 303


async def test_roles_follow_the_api_and_a_refusal_shows_its_reason(shop):
    merchant_id = await shop.merchant()
    merchant = await signed_in(shop, shop.merchant_keys[merchant_id])
    for path in ("/console/finance", "/console/ledger", "/console/ops"):
        r = await merchant.get(path)
        assert r.status_code == 403 and "FORBIDDEN" in r.text, (path, r.text)
    assert (await merchant.get("/console/auditor")).status_code == 403
    # Its own merchant page: yes; another merchant's: as if it did not exist (the API's 404).
    assert (await merchant.get(f"/console/merchants/{merchant_id}")).status_code == 200
    other = await shop.merchant()
    assert (await merchant.get(f"/console/merchants/{other}")).status_code == 404

    finance = await signed_in(shop, shop.keys[Role.FINANCE])
    page = await finance.get("/console/finance")
    csrf = csrf_of(page.text)
    # A decision the API refuses is refused here, with its reason: no such statement.
    r = await finance.post("/console/statements/999999999/approve", data={"csrf": csrf, "note": ""})
    assert r.status_code == 404 and "STATEMENT_NOT_FOUND" in r.text
    r = await finance.post(
        "/console/discrepancies/999999999/resolve", data={"csrf": csrf, "action": "write_off", "reason": "x"}
    )
    assert r.status_code == 404 and "DISCREPANCY_NOT_FOUND" in r.text
    # A form without the session's token never reaches the API.
    r = await finance.post("/console/statements/999999999/approve", data={"note": ""})
    assert r.status_code == 403 and "CSRF" in r.text


async def test_no_clear_identity_or_bank_number_on_an_application_page(shop):
    async with unit_of_work(shop.sessions) as session:
        _, auditor = await issue_key(session, role=Role.AUDITOR, name=f"dora-{uuid.uuid4().hex[:6]}")
    merchant_id, body = await apply_merchant(shop)
    await onboarding_reaches(shop, merchant_id, "IN_REVIEW")
    client = await signed_in(shop, auditor)
    queue = await client.get("/console/auditor")
    assert queue.status_code == 200 and merchant_id in queue.text
    page = await client.get(f"/console/merchants/{merchant_id}")
    assert page.status_code == 200 and 'id="review"' in page.text
    assert body["legal_person_id_no"] not in page.text and body["bank_account_no"] not in page.text
    assert "****" + body["bank_account_no"][-4:] in page.text
    zh = await client.get(f"/console/merchants/{merchant_id}", headers={"Accept-Language": "zh-CN,zh;q=0.9,en;q=0.5"})
    assert "资质审核" in zh.text and '<html lang="zh">' in zh.text
