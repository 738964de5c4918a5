"""Refund rules: what may still be refunded, when an after-sale refund is allowed, where a refund after
settlement takes back from whom (its share of the promotion subsidy included) and where the merchant's
share comes from, and when a refund at the channel is handed to finance (pure).

The activity that opens a refund loads the facts under a lock on the order and its capture, asks
`check_refund`, and records the refund in the same transaction, so concurrent requests can never
promise back more than was paid.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from domain.commission import Split, clawback
from domain.orders import OrderStatus
from domain.promotions import subsidy_reversal
from domain.refunds import RefundOrigin
from domain.refusals import Refusal, Refused

# After-sale refunds are for orders whose service was delivered; before that the order flow's own
# cancellation returns the money in full.
AFTER_SALE = (OrderStatus.DELIVERED, OrderStatus.COMPLETED)


@dataclass(frozen=True)
class RefundFacts:
    order_no: str
    order_status: str  # an OrderStatus
    after_sale_closed: bool  # the after-sale window has ended: the order is settleable
    settlement_cycle: str | None  # the cycle the order is in, if any
    settled: bool  # that cycle's statement was approved
    captured_minor: int | None  # the capture this refund draws on; None: nothing was paid
    currency: str
    held_minor: int  # refunds of this capture that still hold money (refunds.HOLDING)


def refundable(captured_minor: int, held_minor: int) -> int:
    """What a capture can still give back: captured minus what refunds already hold (in flight or done)."""
    return captured_minor - held_minor


def check_refund(facts: RefundFacts, amount_minor: int, origin: RefundOrigin) -> None:
    o = facts.order_no
    if facts.captured_minor is None:
        raise Refused(Refusal.NOTHING_PAID, f"order {o} has no captured payment to refund")
    if origin is RefundOrigin.API:
        # Finance and the platform's own flows may refund outside the after-sale window; the app may not.
        if facts.order_status not in AFTER_SALE:
            raise Refused(
                Refusal.NOT_REFUNDABLE_NOW,
                f"after-sale refunds are for delivered or completed orders; order {o} is {facts.order_status}",
            )
        if facts.after_sale_closed:
            raise Refused(Refusal.AFTER_SALE_CLOSED, f"the after-sale window of order {o} has closed")
    if facts.settlement_cycle is not None and not facts.settled:
        # Its split is being decided: refunding now would release the same money twice.
        raise Refused(
            Refusal.BEING_SETTLED,
            f"order {o} is in settlement cycle {facts.settlement_cycle}; refund it once the statement is decided",
        )
    left = refundable(facts.captured_minor, facts.held_minor)
    if amount_minor > left:
        raise Refused(
            Refusal.REFUND_EXCEEDS_REFUNDABLE,
            f"refund of {amount_minor} exceeds what is refundable on order {o} "
            f"({left} of {facts.captured_minor} {facts.currency})",
        )


@dataclass(frozen=True)
class SettledOrder:
    """A settled order as a refund after settlement sees it, loaded under the order's row lock before
    this refund is counted anywhere."""

    settled: Split  # what its statement line released: gross less refunds before settlement, split
    settled_refunded_minor: int  # refunded to the customer before settlement (the line's refunded)
    settled_subsidy_minor: int  # the subsidy the line settled (the order's, less what refunds reversed before)
    paid_minor: int  # what the customer paid
    refunded_minor: int  # refunded to the customer so far, before and after settlement
    subsidy_minor: int  # the order's platform subsidy (0: none was moved into escrow)
    subsidy_reversed_minor: int  # of it back in marketing so far, before and after settlement


@dataclass(frozen=True)
class SettledRefund:
    part: Split  # what each party the settlement paid gives back: the customer's amount + `subsidy_minor`
    subsidy_minor: int  # of that, the share of the subsidy, which goes back to the platform's marketing


def settled_refund(order: SettledOrder, amount_minor: int, item_subsidy_minor: int | None = None) -> SettledRefund:
    """What a refund of a settled order takes back. The settlement paid out the merchant's gross (paid +
    subsidy), so the refund takes back its cash and its share of the subsidy (`subsidy_reversal`: an item
    refund that item's share, an amount refund its cumulative pro-rata share, the refund that completes the
    order whatever is left) as one gross amount, split over the parties by `commission.clawback`
    cumulatively over everything taken back since settlement (cash and subsidy): any mix of partial
    refunds takes back exactly the settled split once the order is fully refunded, never more."""
    subsidy = subsidy_reversal(
        order.subsidy_minor,
        order.subsidy_reversed_minor,
        order.paid_minor,
        order.refunded_minor + amount_minor,
        item_subsidy_minor,
    )
    reversed_before_settlement = order.subsidy_minor - order.settled_subsidy_minor
    clawed_before = (order.refunded_minor - order.settled_refunded_minor) + (
        order.subsidy_reversed_minor - reversed_before_settlement
    )
    return SettledRefund(clawback(order.settled, clawed_before, amount_minor + subsidy), subsidy)


def merchant_sources(merchant_share_minor: int, available_minor: int) -> tuple[int, int]:
    """Where a refund after settlement takes the merchant's share from: (from available, from clawback).

    As much as the available balance covers comes from it; the rest goes on the clawback account, which
    then shows what the merchant owes (withdrawals wait until it is covered). A negative share (a
    rounding correction in the merchant's favour) goes back to available whole.
    """
    if merchant_share_minor <= 0:
        return merchant_share_minor, 0
    from_available = min(merchant_share_minor, max(available_minor, 0))
    return from_available, merchant_share_minor - from_available


class ChannelStep(StrEnum):
    """What the refund flow does after the channel's latest word on a refund."""

    REFUNDED = "refunded"  # the channel made the refund
    ESCALATE = "escalate"  # the channel definitely did not: finance pays by manual transfer
    ASK_AGAIN = "ask_again"  # unknown: keep listening for the callback and polling
    REQUEST_AGAIN = "request_again"  # the request never reached the channel: send it again (same number)


def channel_step(status: str | None, *, refused: bool, accepted: bool) -> ChannelStep:
    """Unknown is not failed. `status` is the channel's latest word (None: none yet; MISSING: its query
    has no such refund); `refused`: it refused our request; `accepted`: it ever acknowledged the refund.
    Only a definite FAILED, or a refused request the query proves the channel has no record of, escalates:
    a refused retry of a request that had landed, or a query lagging behind an accepted refund, is an
    unknown, and a request that never arrived is sent again."""
    if status == "SUCCESS":
        return ChannelStep.REFUNDED
    if status == "FAILED":
        return ChannelStep.ESCALATE
    if status == "MISSING" and refused:
        return ChannelStep.ESCALATE
    if status == "MISSING" and not accepted:
        return ChannelStep.REQUEST_AGAIN
    return ChannelStep.ASK_AGAIN
