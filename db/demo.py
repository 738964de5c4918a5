"""Demo and test data: an active merchant with its ledger accounts, service providers, stock.

Until merchant onboarding exists, this is how a merchant becomes ACTIVE; afterwards it stays as a
demo-data tool (`ops demo merchant`, `ops demo providers`)."""

from __future__ import annotations

import secrets

from sqlalchemy import text
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from db import providers
from db.ledger import open_accounts, post
from db.models import Capture, Merchant, ServiceProvider, SettlementStatement, SkuStock
from domain import numbers
from domain.accounts import SEED_CHANNEL, merchant_accounts
from domain.crypto import FieldCipher
from domain.ledger import payment_captured
from domain.providers import DEMO_CATEGORIES, ProviderRegistration
from domain.settlement import statement_posting


async def create_active_merchant(
    session: AsyncSession,
    *,
    name: str = "Demo merchant",
    category: str = "food",
    currency: str = "CNY",
    merchant_id: str | None = None,
    status: str = "ACTIVE",
) -> str:
    merchant_id = merchant_id or numbers.merchant_id(secrets.token_hex(5))
    session.add(Merchant(id=merchant_id, name=name, category=category, currency=currency, status=status))
    await session.flush()
    await open_accounts(session, merchant_accounts(merchant_id), currency)
    return merchant_id


async def seed_providers(
    session: AsyncSession,
    count: int = 5,
    prefix: str = "prov",
    *,
    categories: tuple[str, ...] = DEMO_CATEGORIES,
    merchant_id: str | None = None,
) -> list[str]:
    """Online providers registered through the same code path as POST /v1/providers (a seed that exists
    already is left as it is)."""
    ids = [f"{prefix}-{i + 1}" for i in range(count)]
    reg = ProviderRegistration(name="Demo provider", categories=list(categories))
    for pid in ids:
        if await session.get(ServiceProvider, pid) is None:
            await providers.register(session, reg, merchant_id, None, provider_id=pid, online=True)
    return ids


async def set_stock(session: AsyncSession, merchant_id: str, sku_id: str, available: int) -> None:
    await session.execute(
        insert(SkuStock)
        .values(sku_id=sku_id, merchant_id=merchant_id, available=available)
        .on_conflict_do_update(index_elements=["sku_id"], set_={"available": available})
    )


# The orders seed_settleable_orders makes, numbered as f"{prefix}{i:07d}" is.
# The orders seed_settleable_orders makes, numbered as f"{prefix}{i:07d}" is, queued for settlement.
_SERIES = text("""
WITH seeded AS (
    INSERT INTO orders (order_no, customer_id, merchant_id, currency, goods_minor, delivery_fee_minor, discount_minor,
                        payable_minor, paid_minor, refunded_minor, status, payment_no, dispatch_attempts,
                        refund_required_minor, settleable, settleable_at, promoter_id, promoter_bps,
                        commission_rule_id, commission_bps, commission_snapshot)
    SELECT no, 'c-seed', :merchant_id, :currency, :amount, 0, 0, :amount, :amount, 0, 'COMPLETED', 'PAY' || no, 1,
           0, true, now(), :promoter_id, :promoter_bps,
           'seed', :bps, jsonb_build_object('rule_id', 'seed', 'rate_bps', CAST(:bps AS int))
    FROM (SELECT :prefix || lpad(i::text, greatest(7, length(i::text)), '0') AS no
          FROM generate_series(0, CAST(:count AS int) - 1) AS i) AS numbered
    RETURNING order_no, settleable_at
)
INSERT INTO settlement_queue (order_no, settleable_at) SELECT order_no, settleable_at FROM seeded
""")


async def seed_settleable_orders(
    session: AsyncSession,
    merchant_id: str,
    count: int,
    *,
    amount_minor: int,
    commission_bps: int = 500,
    promoter_id: str | None = None,
    promoter_bps: int = 0,
    channel: str = SEED_CHANNEL,
    prefix: str = "SEED",
    captures: bool = False,
    currency: str = "CNY",
) -> list[str]:
    """Completed orders past their after-sale window, with the money captured into escrow (one posting for
    the batch): what a settlement cycle finds after a day of trade, without living through each order.
    With `captures`, each order gets the capture record and posting its payment would have left (what
    refunds need), at the cost of a posting per order."""
    tag = secrets.token_hex(4).upper()
    # One INSERT ... SELECT over generate_series: a million orders in seconds, nothing built in Python.
    await session.execute(
        _SERIES,
        {
            "prefix": f"{prefix}{tag}",
            "count": count,
            "merchant_id": merchant_id,
            "currency": currency,
            "amount": amount_minor,
            "promoter_id": promoter_id,
            "promoter_bps": promoter_bps if promoter_id else 0,
            "bps": commission_bps,
        },
    )
    order_nos = [f"{prefix}{tag}{i:07d}" for i in range(count)]
    if not captures:
        # One capture record for the batch, so escrow still equals what its records say was captured.
        lump = f"seed-{tag}"
        await _captured(session, lump, lump, amount_minor * count, currency, channel, key=f"seed-capture:{tag}")
    else:
        for no in order_nos:
            await _captured(session, no, numbers.payment_no(no), amount_minor, currency, channel)
    await session.flush()
    return order_nos


async def _captured(
    session: AsyncSession,
    order_no: str,
    payment_no: str,
    amount_minor: int,
    currency: str,
    channel: str,
    *,
    key: str | None = None,
) -> None:
    """The capture record and PAYMENT_CAPTURED posting a payment leaves behind."""
    key = key or f"payment-captured:{payment_no}:{channel}"
    posted = await post(session, payment_captured(key, payment_no, currency, amount_minor, channel))
    session.add(
        Capture(
            order_no=order_no,
            payment_no=payment_no,
            channel=channel,
            amount_minor=amount_minor,
            currency=currency,
            ledger_entry_id=posted.entry_id,
        )
    )


async def record_verified_bank_account(
    session: AsyncSession,
    merchant_id: str,
    cipher: FieldCipher,
    *,
    account_no: str | None = None,
    account_name: str = "Demo merchant Ltd",
    bank_name: str = "ICBC Shanghai",
) -> None:
    """Give a merchant made by `create_active_merchant` what onboarding leaves behind for withdrawals: an
    application (bank account number encrypted) whose bank account check KYC passed."""
    from db.models import KycCheckResult, MerchantApplication, MerchantOnboarding

    number = account_no or "6222" + "".join(str(secrets.randbelow(10)) for _ in range(15))
    session.add(
        MerchantApplication(
            merchant_id=merchant_id,
            version=1,
            name=account_name,
            category="food",
            currency="CNY",
            contact_name="Demo",
            contact_phone="+86 138 0000 0000",
            business_licence_no="91310000MA1FL8XQ3A",
            legal_person_name="Demo",
            legal_person_id_enc=cipher.encrypt("110101199003077777"),
            legal_person_id_last4="7777",
            bank_account_name=account_name,
            bank_account_enc=cipher.encrypt(number),
            bank_account_last4=number[-4:],
            bank_name=bank_name,
            submitted_by="demo",
        )
    )
    session.add(MerchantOnboarding(merchant_id=merchant_id, application_version=1, risk_level="low", deposit_minor=0))
    session.add(
        KycCheckResult(
            merchant_id=merchant_id, version=1, kind="bank", request_no=f"demo-bank-{merchant_id}", status="PASS"
        )
    )
    await session.flush()


async def fund_merchant(
    session: AsyncSession, merchant_id: str, amount_minor: int, channel: str = SEED_CHANNEL
) -> None:
    """Money on the merchant's available balance as a settlement leaves it, with the records the ledger
    checks compare it with: a capture record (escrow) and an approved statement of one cycle (available),
    posted by the statement posting rule the approval uses."""
    tag = secrets.token_hex(6)
    await _captured(session, f"demo-{tag}", f"demo-{tag}", amount_minor, "CNY", channel, key=f"demo-capture:{tag}")
    st = SettlementStatement(
        cycle_id=f"seed-{tag}",
        merchant_id=merchant_id,
        currency="CNY",
        status="APPROVED",
        order_count=0,
        gross_minor=amount_minor,
        refunded_minor=0,
        commission_minor=0,
        promoter_minor=0,
        net_minor=amount_minor,
        adjustment_minor=0,
        approved_by="seed",
    )
    session.add(st)
    await session.flush()
    posting = statement_posting(
        st.id,
        "CNY",
        merchant_id=merchant_id,
        net_minor=amount_minor,
        commission_minor=0,
        adjustment_minor=0,
        promoters={},
    )
    st.ledger_entry_id = (await post(session, posting)).entry_id
