"""The clawback of refunds after settlement: exact across any sequence of partial refunds, per party."""

from hypothesis import given
from hypothesis import strategies as st

from domain.commission import Split, clawback, refunded_share, split


@st.composite
def settled_and_refunds(draw: st.DrawFn) -> tuple[Split, list[int]]:
    gross = draw(st.integers(min_value=1, max_value=10**9))
    refunded_before_settlement = draw(st.integers(min_value=0, max_value=gross - 1))
    floor = draw(st.one_of(st.none(), st.integers(min_value=0, max_value=gross)))
    cap = draw(st.one_of(st.none(), st.integers(min_value=floor or 0, max_value=2 * gross)))
    settled = split(
        gross,
        refunded_before_settlement,
        rate_bps=draw(st.integers(min_value=0, max_value=10_000)),
        floor_minor=floor,
        cap_minor=cap,
        promoter_bps=draw(st.integers(min_value=0, max_value=10_000)),
    )
    left = settled.base_minor
    refunds = []
    for _ in range(draw(st.integers(min_value=1, max_value=8))):
        if left == 0:
            break
        amount = draw(st.integers(min_value=1, max_value=left))
        refunds.append(amount)
        left -= amount
    if draw(st.booleans()) and left:
        refunds.append(left)  # and often the rest, so the order ends fully refunded
    return settled, refunds


@given(settled_and_refunds())
def test_partial_refunds_never_claw_back_more_than_was_settled_per_party(case: tuple[Split, list[int]]) -> None:
    settled, refunds = case
    taken = {"merchant": 0, "commission": 0, "promoter": 0}
    before = 0
    for amount in refunds:
        part = clawback(settled, before, amount)
        assert part.base_minor == amount
        assert part.merchant_net_minor + part.commission_minor + part.promoter_minor == amount
        taken["merchant"] += part.merchant_net_minor
        taken["commission"] += part.commission_minor
        taken["promoter"] += part.promoter_minor
        before += amount
        assert 0 <= taken["merchant"] <= settled.merchant_net_minor
        assert 0 <= taken["commission"] <= settled.commission_minor
        assert 0 <= taken["promoter"] <= settled.promoter_minor
        # whatever the sequence, the total taken is the share of the total refunded
        total = refunded_share(settled, before)
        assert (taken["merchant"], taken["commission"], taken["promoter"]) == (
            total.merchant_net_minor,
            total.commission_minor,
            total.promoter_minor,
        )
    if before == settled.base_minor:
        assert taken == {
            "merchant": settled.merchant_net_minor,
            "commission": settled.commission_minor,
            "promoter": settled.promoter_minor,
        }


def test_two_halves_of_a_451_commission_claw_back_451_not_452() -> None:
    settled = split(9000, 0, rate_bps=501, floor_minor=None, cap_minor=None, promoter_bps=200)
    assert (settled.commission_minor, settled.promoter_minor, settled.merchant_net_minor) == (451, 180, 8369)
    first, second = clawback(settled, 0, 4500), clawback(settled, 4500, 4500)
    assert (first.commission_minor, second.commission_minor) == (226, 225)
    assert (first.promoter_minor, second.promoter_minor) == (90, 90)
    assert first.merchant_net_minor + second.merchant_net_minor == 8369


def test_a_refund_beyond_what_was_settled_is_refused() -> None:
    settled = split(1000, 0, rate_bps=500, floor_minor=None, cap_minor=None, promoter_bps=0)
    try:
        clawback(settled, 600, 500)
    except ValueError as exc:
        assert "outside" in str(exc)
    else:
        raise AssertionError("a clawback beyond the settled base was accepted")


def test_the_clawback_posting_debits_each_party_and_credits_a_handed_back_unit() -> None:
    from domain import accounts
    from domain import ledger as rules

    posting = rules.refund_after_settlement(
        "k",
        "RF1",
        "CNY",
        channel="wechat",
        merchant_id="m1",
        from_available=-1,
        from_clawback=0,
        commission_share=3,
        promoter_id="p1",
        promoter_share=1,
        paid_from=accounts.bank_payout("platform"),
    )
    assert posting.code is rules.TxCode.MANUAL_REFUND_AFTER_SETTLEMENT
    assert {(ln.account, ln.side.value, ln.amount_minor) for ln in posting.lines} == {
        ("merchant:m1:available", "C", 1),
        ("platform:commission_revenue", "D", 3),
        ("promoter:p1:payable", "D", 1),
        ("bank:platform:payout_clearing", "C", 3),
    }


def test_a_rounding_unit_can_come_back_to_a_party_but_the_parts_always_add_up() -> None:
    # settled 5 as commission 1, promoter 1, merchant 3: refunding the 3rd unit tips the commission's
    # rounding up and the promoter's (taken with the 2nd) back down; the total stays exact.
    settled = split(5, 0, rate_bps=1000, floor_minor=None, cap_minor=None, promoter_bps=1000)
    assert (settled.commission_minor, settled.promoter_minor, settled.merchant_net_minor) == (1, 1, 3)
    parts = [clawback(settled, before, 1) for before in range(5)]
    assert [(p.commission_minor, p.promoter_minor, p.merchant_net_minor) for p in parts][2] == (1, -1, 1)
    assert sum(p.commission_minor for p in parts) == 1 and sum(p.promoter_minor for p in parts) == 1
    assert sum(p.merchant_net_minor for p in parts) == 3
