import pytest

from domain.signing import NONCE_HEADER, SIGNATURE_HEADER, NonceCache, SignatureError, sign, signed_headers, verify

SECRET = "s3cret"
BODY = b'{"event_id":"e1"}'
PATH = "/v1/callbacks/wechat"


def headers(ts: str | None, nonce: str | None, sig: str | None) -> dict[str, str]:
    raw = {"X-Signature-Timestamp": ts, NONCE_HEADER: nonce, SIGNATURE_HEADER: sig}
    return {k: v for k, v in raw.items() if v is not None}


def test_a_fresh_correct_signature_verifies_and_answers_its_nonce():
    h = signed_headers(SECRET, "POST", f"http://api.example:8000{PATH}", BODY, now=1_000_000)
    assert verify(SECRET, "POST", PATH, h, BODY, max_age_seconds=300, now=1_000_100) == h[NONCE_HEADER]


def test_every_signature_gets_its_own_nonce():
    a, b = (signed_headers(SECRET, "POST", PATH, BODY, now=1_000_000) for _ in range(2))
    assert a[NONCE_HEADER] != b[NONCE_HEADER] and a[SIGNATURE_HEADER] != b[SIGNATURE_HEADER]


GOOD = sign(SECRET, "POST", PATH, 1_000_000, "n1", BODY)


@pytest.mark.parametrize(
    ("method", "target", "h", "body", "now", "reason"),
    [
        ("POST", PATH, headers(None, "n1", "x"), BODY, 0, "missing"),
        ("POST", PATH, headers("1000000", None, GOOD), BODY, 1_000_000, "missing"),
        ("POST", PATH, headers("abc", "n1", "x"), BODY, 0, "malformed"),
        ("POST", PATH, headers("1000000", "n" * 65, GOOD), BODY, 1_000_000, "malformed"),
        ("POST", PATH, headers("1000000", "n1", GOOD), BODY, 1_000_301, "away from now"),
        # a timestamp from the future would outlive the nonce cache's window: refused the same way
        ("POST", PATH, headers("1000000", "n1", GOOD), BODY, 999_699, "away from now"),
        (
            "POST",
            PATH,
            headers("1000000", "n1", sign("other", "POST", PATH, 1_000_000, "n1", BODY)),
            BODY,
            1_000_000,
            "does not match",
        ),
        ("POST", PATH, headers("1000000", "n1", GOOD), BODY + b" ", 1_000_000, "does not match"),
        # the timestamp is inside the signature: a replay with a fresh timestamp fails
        ("POST", PATH, headers("1000200", "n1", GOOD), BODY, 1_000_200, "does not match"),
        # so are the method, the path and the nonce: a captured signature is worth nothing elsewhere
        ("POST", "/v1/callbacks/alipay", headers("1000000", "n1", GOOD), BODY, 1_000_000, "does not match"),
        ("PUT", PATH, headers("1000000", "n1", GOOD), BODY, 1_000_000, "does not match"),
        ("POST", PATH, headers("1000000", "n2", GOOD), BODY, 1_000_000, "does not match"),
    ],
)
def test_bad_stale_forged_or_moved_signatures_are_refused(method, target, h, body, now, reason):
    with pytest.raises(SignatureError, match=reason):
        verify(SECRET, method, target, h, body, max_age_seconds=300, now=now)


def test_the_signed_target_is_the_path_and_query_of_the_url():
    h = signed_headers(SECRET, "GET", "http://sandbox:8100/wechat/v1/orders/P1?x=1", b"", now=1_000_000)
    verify(SECRET, "GET", "/wechat/v1/orders/P1?x=1", h, b"", max_age_seconds=300, now=1_000_000)
    with pytest.raises(SignatureError):
        verify(SECRET, "GET", "/wechat/v1/orders/P1", h, b"", max_age_seconds=300, now=1_000_000)


def test_a_nonce_is_accepted_once_per_party_within_the_window():
    cache = NonceCache(300)
    cache.check_and_remember("wechat", "n1", now=1_000_000)
    with pytest.raises(SignatureError, match="already used"):
        cache.check_and_remember("wechat", "n1", now=1_000_299)
    cache.check_and_remember("alipay", "n1", now=1_000_000)  # another party's nonces are its own
    # Long after, a signature carrying it would be stale anyway: the cache may forget it.
    cache.check_and_remember("wechat", "n1", now=1_000_000 + 601)
