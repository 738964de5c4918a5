"""Logs: JSON lines carrying the workflow, run, activity and business ids; never an identity or bank number."""

from __future__ import annotations

import json

from sqlalchemy import select

from db.engine import unit_of_work
from db.models.merchants import MerchantApplication
from domain.crypto import FieldCipher
from domain.settings import Settings
from tests.support.sandbox_receiver import eventually
from tests.support.shop import apply_merchant, onboarding_reaches


def _json_lines(services, name: str) -> list[dict]:
    lines = []
    for raw in (services.logs / f"{name}.log").read_text(errors="replace").splitlines():
        if raw.startswith("{"):
            lines.append(json.loads(raw))
    return lines


async def test_an_activity_failure_is_one_json_line_with_the_flow_and_business_ids(shop):
    merchant_id = await shop.merchant()
    placed = await shop.placed(merchant_id, channel="wechat")
    payment_no = placed["payment"]["payment_no"]
    # The channel's query API fails for a while: the polling activity fails and is retried, and the SDK logs it.
    await shop.faults("wechat", query_down=True)

    async def logged():
        return [
            line
            for line in _json_lines(shop.services, "worker")
            if line.get("payment_no") == payment_no and line.get("activity") == "channel.query_order"
        ]

    lines = await eventually(logged, within=30)
    await shop.reset_faults()
    line = lines[0]
    assert line["workflow_id"] == f"payment-{payment_no}"
    assert line["run_id"] and line["workflow_type"] == "PaymentWorkflow"
    assert line["level"] in {"WARNING", "ERROR"} and line["service"] == "worker" and line["time"]


async def test_no_identity_or_bank_number_is_ever_logged(shop):
    # This file's own application, so there is at least one, run through KYC; then every application
    # the suite's stack has seen so far, decrypted, against every log its processes wrote.
    merchant_id, _ = await apply_merchant(shop)
    await onboarding_reaches(shop, merchant_id, "IN_REVIEW")
    cipher = FieldCipher(Settings().field_encryption_key)
    async with unit_of_work(shop.sessions) as session:
        rows = (await session.execute(select(MerchantApplication))).scalars().all()
    secrets = {cipher.decrypt(r.legal_person_id_enc) for r in rows} | {cipher.decrypt(r.bank_account_enc) for r in rows}
    assert len(secrets) >= 2
    logs = sorted(shop.services.logs.glob("*.log"))
    assert {p.name for p in logs} >= {"api.log", "worker.log", "sandbox.log"}
    for path in logs:
        text = path.read_text(errors="replace")
        leaked = sorted(s for s in secrets if s in text)
        assert not leaked, f"{path.name} holds {len(leaked)} identity or bank number(s)"
