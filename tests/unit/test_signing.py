import pytest

from domain.signing import SignatureError, sign, signed_headers, verify

SECRET = "s3cret"
BODY = b'{"event_id":"e1"}'


def test_a_fresh_correct_signature_verifies():
    h = signed_headers(SECRET, BODY, now=1_000_000)
    verify(SECRET, h["X-Signature-Timestamp"], h["X-Signature"], BODY, max_age_seconds=300, now=1_000_100)


@pytest.mark.parametrize(
    ("ts", "sig", "body", "now", "reason"),
    [
        (None, "x", BODY, 0, "missing"),
        ("abc", "x", BODY, 0, "malformed"),
        ("1000000", sign(SECRET, 1_000_000, BODY), BODY, 1_000_301, "away from now"),
        ("1000000", sign("other", 1_000_000, BODY), BODY, 1_000_000, "does not match"),
        ("1000000", sign(SECRET, 1_000_000, BODY), BODY + b" ", 1_000_000, "does not match"),
        # the timestamp is inside the signature: a replay with a fresh timestamp fails
        ("1000200", sign(SECRET, 1_000_000, BODY), BODY, 1_000_200, "does not match"),
    ],
)
def test_bad_stale_or_forged_signatures_are_refused(ts, sig, body, now, reason):
    with pytest.raises(SignatureError, match=reason):
        verify(SECRET, ts, sig, body, max_age_seconds=300, now=now)
