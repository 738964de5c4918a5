"""The console in a real browser (Playwright on Debian's Chromium, launched by path; nothing downloaded):
finance approves a statement a real cycle left pending and sees the balance change; an auditor approves
an application; an operator finds a stuck flow and its Temporal UI link; a merchant key cannot open
finance pages. Screenshots of each main page go to test-output/console/ (BACKOFFICE_TEST_OUTPUT_DIR)."""

from __future__ import annotations

import os
import shutil
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from temporalio.common import SearchAttributePair, TypedSearchAttributes

from db.api_keys import issue_key
from db.engine import unit_of_work
from domain.access import Role
from domain.accounts import merchant_account
from tests.integration.test_settlement import BIG, run_cycle, seeded, statements_of
from tests.support.sandbox_receiver import eventually
from tests.support.shop import Shop, apply_merchant, onboarding_reaches
from workflows.search_attributes import BO_FLOW, BO_STAGE, BO_STAGE_SINCE

CHROMIUM = os.environ.get("BACKOFFICE_CHROMIUM", shutil.which("chromium") or "/usr/bin/chromium")
if not Path(CHROMIUM).exists():
    pytest.skip(
        "browser tests skipped: no Chromium (apt-get install chromium, or set BACKOFFICE_CHROMIUM)",
        allow_module_level=True,
    )
from playwright.async_api import Browser, Page, async_playwright  # noqa: E402

OUTPUT = Path(os.environ.get("BACKOFFICE_TEST_OUTPUT_DIR", "test-output")) / "console"
# The flags a root process needs in this closed network (no sandbox, no background fetches).
FLAGS = [
    "--headless=new",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


@pytest.fixture(scope="module")
async def browser() -> AsyncIterator[Browser]:
    OUTPUT.mkdir(parents=True, exist_ok=True)
    async with async_playwright() as p:
        b = await p.chromium.launch(executable_path=CHROMIUM, args=FLAGS)
        yield b
        await b.close()


async def signed_in(browser: Browser, shop: Shop, key: str, lang: str = "en") -> Page:
    context = await browser.new_context(base_url=shop.services.api_url, locale=lang)
    page = await context.new_page()
    await page.goto("/console/sign-in")
    await page.fill("input[name=api_key]", key)
    await page.click("button[type=submit]")
    await page.wait_for_url("**/console")
    return page


async def shot(page: Page, name: str) -> None:
    await page.screenshot(path=str(OUTPUT / f"{name}.png"), full_page=True)


async def test_finance_approves_a_pending_statement_and_sees_the_balance_change(shop, browser):
    merchant_id, _ = await seeded(shop, 2, BIG, commission_bps=500)
    await run_cycle(shop)

    async def pending() -> dict[str, Any] | None:
        sts = await statements_of(shop, merchant_id)
        return sts[0] if sts and sts[0]["status"] == "PENDING_APPROVAL" else None

    st = await eventually(pending, 30)
    before = await shop.balance(merchant_account(merchant_id, "available"))
    page = await signed_in(browser, shop, shop.keys[Role.FINANCE])
    await shot(page, "overview")
    await page.goto("/console/finance")
    await shot(page, "finance-queue")
    await page.click(f"a[href='/console/statements/{st['id']}']")
    await shot(page, "statement")
    await page.fill("form[action$='/approve'] input[name=note]", "checked in the browser")
    await page.click("#approve")
    await page.wait_for_selector("#status:text('APPROVED')")
    assert await shop.balance(merchant_account(merchant_id, "available")) == before + st["net_minor"]
    await page.goto(f"/console/merchants/{merchant_id}")
    await shot(page, "merchant")
    shown = await page.text_content("#available")
    assert shown is not None and shown.replace(",", "") == f"{(before + st['net_minor']) / 100:.2f}"
    await page.goto("/console/ledger")
    await shot(page, "trial-balance")
    assert await page.text_content("#balanced") == "✓"


async def test_an_auditor_approves_an_application(shop, browser):
    async with unit_of_work(shop.sessions) as session:
        _, auditor = await issue_key(session, role=Role.AUDITOR, name=f"erin-{uuid.uuid4().hex[:6]}")
    merchant_id, _ = await apply_merchant(shop)
    await onboarding_reaches(shop, merchant_id, "IN_REVIEW")
    page = await signed_in(browser, shop, auditor, lang="zh-CN")
    await page.goto("/console/auditor")
    await shot(page, "review-queue")
    await page.click(f"a[href='/console/merchants/{merchant_id}']")
    await shot(page, "application")
    await page.select_option("#review select[name=decision]", "approve")
    await page.fill("#review input[name=reason]", "licence and identity match")
    await page.click("#review button[type=submit]")
    await page.wait_for_url(f"**/console/merchants/{merchant_id}?done=*")
    status = await page.text_content("#status")
    assert status in ("CONTRACTING", "SECOND_REVIEW"), status
    m = await onboarding_reaches(shop, merchant_id, str(status))
    assert m["reviews"][0]["decision"] == "approve"


async def test_an_operator_finds_a_stuck_flow_and_its_temporal_link(shop, browser, temporal):
    workflow_id = f"stuck-probe-console-{uuid.uuid4().hex[:8]}"
    await temporal.start_workflow(
        "StuckProbe",
        id=workflow_id,
        task_queue=f"stuck-probes-{uuid.uuid4().hex[:6]}",  # no worker: it rests where it started
        search_attributes=TypedSearchAttributes(
            [
                SearchAttributePair(BO_FLOW, "console-probe"),
                SearchAttributePair(BO_STAGE, "PROBE_STAGE"),
                SearchAttributePair(BO_STAGE_SINCE, datetime.now(UTC) - timedelta(days=2)),
            ]
        ),
    )
    try:
        page = await signed_in(browser, shop, shop.keys[Role.OPERATOR])

        async def listed() -> bool:
            await page.goto("/console/ops")
            return await page.locator(f"text={workflow_id}").count() == 1

        await eventually(listed, 20)
        await shot(page, "stuck-flows")
        row = page.locator("#stuck tr", has_text=workflow_id)
        href = await row.locator("a.temporal").get_attribute("href")
        assert href is not None and href.endswith(f"/namespaces/default/workflows/{workflow_id}"), href
    finally:
        await temporal.get_workflow_handle(workflow_id).terminate("test over")


async def test_a_merchant_key_cannot_open_finance_pages(shop, browser):
    merchant_id = await shop.merchant()
    page = await signed_in(browser, shop, shop.merchant_keys[merchant_id])
    response = await page.goto("/console/finance")
    assert response is not None and response.status == 403
    assert "FORBIDDEN" in (await page.text_content("#reason") or "")
    await shot(page, "merchant-forbidden")
