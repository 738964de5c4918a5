"""Every flow's workflow id, one function per flow (ARCHITECTURE.md §1).

A workflow id is the flow's business key: starting a flow twice under one id attaches to the running one,
and a party's notification finds its flow by the number it names. The API, the worker, the operator
tools, the tests and the workflows that start children all build ids here, so the strings never drift.
They are wire format: recorded histories and running flows carry them, so changing one orphans every
flow started under the old id.

Pure string functions, no Temporal client: workflow code imports this module inside the sandbox."""

from __future__ import annotations

from datetime import date

from domain.recon.lines import Source

# The long-lived flow that collects queued withdrawals into batches for the bank (one per namespace).
PAYOUT_BATCHER_WORKFLOW_ID = "payout-batcher"

# The id the settlement schedule starts its cycles under (Temporal appends the scheduled time).
SCHEDULED_SETTLEMENT_WORKFLOW_ID = "settlement-scheduled"
# The daily reconciliation the `recon-daily` Schedule starts (one run at a time).
SCHEDULED_RECON_WORKFLOW_ID = "recon-daily-scheduled"


def order_workflow_id(order_no: str) -> str:
    return f"order-{order_no}"


def payment_workflow_id(payment_no: str) -> str:
    return f"payment-{payment_no}"


def refund_workflow_id(refund_no: str) -> str:
    return f"refund-{refund_no}"


def withdrawal_workflow_id(withdrawal_id: str) -> str:
    return f"withdrawal-{withdrawal_id}"


def merchant_onboarding_workflow_id(merchant_id: str) -> str:
    return f"onboarding-{merchant_id}"


def settlement_workflow_id(cycle_id: str) -> str:
    return f"settlement-{cycle_id}"


def statement_workflow_id(statement_id: int | str) -> str:
    return f"statement-{statement_id}"


def recon_workflow_id(source: Source | str, bill_date: date) -> str:
    return f"recon-{Source(source).value}-{bill_date.isoformat()}"


def discrepancy_workflow_id(discrepancy_id: int) -> str:
    return f"discrepancy-{discrepancy_id}"
