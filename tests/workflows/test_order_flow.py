"""OrderWorkflow's admission on its own: what the order's first activity refuses under its lock (the same
rule the API asked before the flow started) reaches the caller unchanged, and nothing is started."""

from __future__ import annotations

from typing import Any

import pytest
from temporalio import activity
from temporalio.client import Client

from activities.refusals import carried
from domain.admission import MerchantFacts, admit_merchant, admit_stock
from domain.orders import OrderInput, OrderResult, OrderStatus
from domain.refusals import Refusal
from tests.workflows.conftest import Flow, order_input, refusal_of
from workflows.ids import order_workflow_id
from workflows.order import OrderWorkflow


def placing(merchant: MerchantFacts, stock_left: int) -> tuple[list[Any], list[str]]:
    """A double of orders.create: the merchant and the stock as they are by the time the flow records the
    order (they changed after the API's check), judged by the real admission rule."""
    calls: list[str] = []

    @activity.defn(name="orders.create")
    async def create(order: OrderInput) -> None:
        calls.append(order.order_no)
        with carried():
            admit_merchant(order.request.merchant_id, merchant, order.request.currency)
            admit_stock({i.sku_id: i.quantity for i in order.request.items}, {"sku-1": stock_left})

    return [create], calls


@pytest.mark.parametrize(
    ("merchant", "stock_left", "code", "says"),
    [
        (MerchantFacts("m-1", "SUSPENDED", "CNY"), 5, Refusal.MERCHANT_NOT_ACTIVE, "is SUSPENDED, not ACTIVE"),
        (MerchantFacts("m-1", "ACTIVE", "CNY"), 1, Refusal.OUT_OF_STOCK, "sku-1 (wanted 2, 1 left)"),
    ],
)
async def test_a_refused_order_is_cancelled_before_any_payment(
    temporal: Client, merchant: MerchantFacts, stock_left: int, code: Refusal, says: str
) -> None:
    doubles, calls = placing(merchant, stock_left)
    flow = Flow(temporal, OrderWorkflow, doubles)
    inp = order_input(flow, 2)
    workflow_id = order_workflow_id(inp.order_no)
    async with flow.worker:
        assert await refusal_of(flow.start_and_ask(OrderWorkflow.run, inp, workflow_id, OrderWorkflow.placed)) == code
        # PaymentWorkflow is not even registered here: had the flow gone on, it would wait for it forever.
        result: OrderResult = await temporal.get_workflow_handle_for(OrderWorkflow.run, workflow_id).result()
    assert result.status is OrderStatus.CANCELLED and says in (result.cancel_reason or "")
    assert calls == [inp.order_no]
