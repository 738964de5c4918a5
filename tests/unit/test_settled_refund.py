"""Refunds of a settled order with a platform subsidy: the cash and the subsidy share come back from
those the settlement paid, exactly, over any mix of item and amount refunds before and after settlement."""

from __future__ import annotations

from dataclasses import dataclass

from hypothesis import given
from hypothesis import strategies as st

from domain.commission import refunded_share, split
from domain.promotions import item_refund_minor, subsidy_reversal
from domain.refund_rules import SettledOrder, merchant_sources, settled_refund


@dataclass
class Order:
    paid: int
    subsidy: int
    refunded: int = 0
    reversed: int = 0


@st.composite
def items(draw: st.DrawFn) -> list[tuple[int, int, int]]:
    """(what the customer paid for the line, the line's subsidy, its quantity) per line."""
    n = draw(st.integers(1, 5))
    return [(draw(st.integers(0, 10**6)), draw(st.integers(0, 10**5)), draw(st.integers(1, 5))) for _ in range(n)]


def item_refund(line: tuple[int, int, int], units: int) -> tuple[int, int]:
    """What an item refund of `units` of a line returns and the subsidy share it names (as the API does)."""
    paid, subsidy, quantity = line
    return item_refund_minor(paid, 0, quantity, units), subsidy * units // quantity


@given(items(), st.data())
def test_any_mix_of_refunds_after_settlement_takes_back_cash_and_subsidy_exactly(
    lines: list[tuple[int, int, int]], data: st.DataObject
) -> None:
    o = Order(paid=sum(x[0] for x in lines), subsidy=sum(x[1] for x in lines))
    if o.paid == 0:
        return  # an order with nothing to pay is refused at placement
    todo = list(lines)
    # some whole lines refunded before settlement: their subsidy share goes back out of escrow
    while todo and data.draw(st.booleans()):
        line = todo.pop()
        paid_back, item_share = item_refund(line, line[2])
        o.refunded += paid_back
        o.reversed += subsidy_reversal(o.subsidy, o.reversed, o.paid, o.refunded, item_share)
    if o.refunded >= o.paid:
        return  # nothing left to settle
    gross, refunded_at_settlement = o.paid + o.subsidy - o.reversed, o.refunded
    settled = split(
        gross,
        refunded_at_settlement,
        rate_bps=data.draw(st.integers(0, 10_000)),
        floor_minor=data.draw(st.one_of(st.none(), st.integers(0, gross))),
        cap_minor=None,
        promoter_bps=data.draw(st.integers(0, 10_000)),
    )
    settled_subsidy = o.subsidy - o.reversed
    available = settled.merchant_net_minor
    taken = {"merchant": 0, "commission": 0, "promoter": 0, "subsidy": 0, "cash": 0}

    def refund(amount: int, item_share: int | None) -> None:
        facts = SettledOrder(
            settled=settled,
            settled_refunded_minor=refunded_at_settlement,
            settled_subsidy_minor=settled_subsidy,
            paid_minor=o.paid,
            refunded_minor=o.refunded,
            subsidy_minor=o.subsidy,
            subsidy_reversed_minor=o.reversed,
        )
        back = settled_refund(facts, amount, item_share)
        part = back.part
        assert 0 <= back.subsidy_minor <= o.subsidy - o.reversed
        # nothing lost: what the parties give back is the customer's money plus the subsidy share
        assert part.base_minor == amount + back.subsidy_minor
        assert part.merchant_net_minor + part.commission_minor + part.promoter_minor == amount + back.subsidy_minor
        from_available, from_clawback = merchant_sources(part.merchant_net_minor, available)
        assert from_available + from_clawback == part.merchant_net_minor
        o.refunded += amount
        o.reversed += back.subsidy_minor
        taken["merchant"] += part.merchant_net_minor
        taken["commission"] += part.commission_minor
        taken["promoter"] += part.promoter_minor
        taken["subsidy"] += back.subsidy_minor
        taken["cash"] += amount
        # cumulative: the merchant has given back the gross refunded less the commission and promoter
        # shares returned, exactly the settled proportion of it, never more than any party was paid
        share = refunded_share(settled, taken["cash"] + taken["subsidy"])
        assert (taken["merchant"], taken["commission"], taken["promoter"]) == (
            share.merchant_net_minor,
            share.commission_minor,
            share.promoter_minor,
        )
        assert taken["merchant"] == taken["cash"] + taken["subsidy"] - taken["commission"] - taken["promoter"]
        assert 0 <= taken["merchant"] <= settled.merchant_net_minor
        assert 0 <= taken["commission"] <= settled.commission_minor
        assert 0 <= taken["promoter"] <= settled.promoter_minor

    # after settlement: item refunds of some units of the remaining lines, then amount refunds
    for line in todo:
        if data.draw(st.booleans()):
            amount, item_share = item_refund(line, data.draw(st.integers(1, line[2])))
            if amount:
                refund(amount, item_share)
    left = o.paid - o.refunded
    cuts = sorted(data.draw(st.lists(st.integers(0, left), max_size=4)))
    pieces = [b - a for a, b in zip([0, *cuts], [*cuts, left], strict=True)]
    full = data.draw(st.booleans())
    for piece in pieces if full else pieces[:-1]:
        if piece:
            refund(piece, None)
    if full:
        assert o.refunded == o.paid
        # the whole subsidy is back in marketing (before and after settlement), every party gave back
        # exactly what it was settled
        assert o.reversed == o.subsidy and taken["subsidy"] == settled_subsidy
        assert (taken["merchant"], taken["commission"], taken["promoter"]) == (
            settled.merchant_net_minor,
            settled.commission_minor,
            settled.promoter_minor,
        )
