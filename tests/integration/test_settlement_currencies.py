"""One settlement cycle over merchants trading in two currencies: one statement per merchant in its own
currency, each posted from the escrow of that currency, no amount ever crossing currencies."""

from __future__ import annotations

from db import demo
from db.engine import unit_of_work
from domain.accounts import ESCROW, merchant_account
from tests.integration.test_settlement import cycle_reaches, run_cycle, seeded, statements_of


async def test_a_cycle_settles_each_currency_from_its_own_escrow(shop):
    cny, cny_orders = await seeded(shop, 3, 1000)
    usd = await shop.merchant(currency="USD")
    escrow_usd_before = await shop.balance(ESCROW, "USD")
    async with unit_of_work(shop.sessions) as session:
        usd_orders = await demo.seed_settleable_orders(session, usd, 2, amount_minor=2000, currency="USD")
    assert await shop.balance(ESCROW, "USD") == escrow_usd_before + 4000

    cycle = await run_cycle(shop)
    await cycle_reaches(shop, cycle["cycle_id"], "CLOSED")
    [st_cny] = await statements_of(shop, cny)
    [st_usd] = await statements_of(shop, usd)
    assert (st_cny["currency"], st_cny["status"], st_cny["order_count"]) == ("CNY", "APPROVED", len(cny_orders))
    assert (st_usd["currency"], st_usd["status"], st_usd["order_count"]) == ("USD", "APPROVED", len(usd_orders))
    # 5% commission (the seeded rule), each in its own currency.
    assert (st_cny["gross_minor"], st_cny["commission_minor"], st_cny["net_minor"]) == (3000, 150, 2850)
    assert (st_usd["gross_minor"], st_usd["commission_minor"], st_usd["net_minor"]) == (4000, 200, 3800)
    assert await shop.balance(merchant_account(usd, "available"), "USD") == 3800
    assert await shop.balance(merchant_account(cny, "available"), "CNY") == 2850
    # Nothing of one merchant's money shows up in the other currency.
    assert await shop.balance(merchant_account(usd, "available"), "CNY") == 0
    assert await shop.balance(merchant_account(cny, "available"), "USD") == 0
    assert await shop.balance(ESCROW, "USD") == escrow_usd_before
