"""Which party may tell the platform what: the rule the callback receiver applies after the signature."""

import pytest

from domain.callbacks import AskedFor, refusal

PAYMENT = AskedFor("payment", "PAY1", frozenset({"wechat"}), 1000, "CNY")
REFUND = AskedFor("refund", "RF1", frozenset({"alipay"}), 300, "CNY")
PAYOUT = AskedFor("payout", "wd-1", frozenset({"bank"}), 5000, "CNY")


def paid(**extra: object) -> dict[str, object]:
    return {"out_trade_no": "PAY1", "amount_minor": 1000, "currency": "CNY", "status": "SUCCESS", **extra}


@pytest.mark.parametrize(
    ("party", "event_type", "payload", "asked"),
    [
        ("wechat", "payment.succeeded", paid(), PAYMENT),
        ("wechat", "payment.succeeded", paid(party="wechat"), PAYMENT),
        ("wechat", "payment.succeeded", paid(), None),  # no record: the flow checks what it asked for
        ("alipay", "refund.failed", {"out_refund_no": "RF1", "amount_minor": 1, "status": "FAILED"}, REFUND),
        ("bank", "payout.paid", {"payout_no": "wd-1", "amount_minor": 5000, "currency": "CNY"}, PAYOUT),
        ("kyc", "kyc.completed", {"merchant_ref": "m1"}, None),
        ("esign", "contract.signed", {"merchant_ref": "m1"}, None),
    ],
)
def test_a_party_speaking_of_its_own_subject_is_accepted(party, event_type, payload, asked):
    assert refusal(party, event_type, payload, asked) is None


@pytest.mark.parametrize(
    ("party", "event_type", "payload", "asked", "says"),
    [
        ("bank", "payment.succeeded", paid(), PAYMENT, "bank may not send"),
        ("bank", "refund.succeeded", {"out_refund_no": "RF1"}, None, "bank may not send"),
        ("kyc", "payout.paid", {"payout_no": "wd-1"}, None, "kyc may not send"),
        ("wechat", "payout.paid", {"payout_no": "wd-1"}, PAYOUT, "wechat may not send"),
        ("paypal", "payment.succeeded", paid(), PAYMENT, "paypal may not send"),
        ("wechat", "payment.succeeded", paid(party="alipay"), PAYMENT, "names party 'alipay'"),
        ("alipay", "payment.succeeded", paid(), PAYMENT, "was not sent to alipay"),
        (
            "wechat",
            "refund.succeeded",
            {"out_refund_no": "RF1", "amount_minor": 300, "currency": "CNY"},
            REFUND,
            "not sent to wechat",
        ),
        ("wechat", "payment.succeeded", paid(amount_minor=1), PAYMENT, "asked for 1000 CNY"),
        ("wechat", "payment.succeeded", paid(amount_minor="1000"), PAYMENT, "asked for 1000 CNY"),
        ("wechat", "payment.succeeded", paid(amount_minor=True), PAYMENT, "asked for 1000 CNY"),
        ("wechat", "payment.succeeded", paid(currency="USD"), PAYMENT, "asked for 1000 CNY"),
        ("wechat", "payment.succeeded", {"out_trade_no": "PAY1"}, PAYMENT, "asked for 1000 CNY"),
        (
            "alipay",
            "refund.succeeded",
            {"out_refund_no": "RF1", "amount_minor": 299, "currency": "CNY"},
            REFUND,
            "asked for 300",
        ),
        (
            "bank",
            "payout.paid",
            {"payout_no": "wd-1", "amount_minor": 5000, "currency": "USD"},
            PAYOUT,
            "asked for 5000",
        ),
    ],
)
def test_another_partys_subject_or_another_amount_is_refused(party, event_type, payload, asked, says):
    reason = refusal(party, event_type, payload, asked)
    assert reason is not None and says in reason
