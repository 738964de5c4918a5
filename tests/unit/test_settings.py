import pytest

from domain.crypto import DEV_FIELD_KEY
from domain.settings import Settings, ensure_safe_to_start


def test_durations_thresholds_and_external_servers_come_from_the_environment(monkeypatch):
    monkeypatch.setenv("BACKOFFICE_PAYMENT_TIMEOUT_SECONDS", "30")
    monkeypatch.setenv("BACKOFFICE_CHANNEL_WEIGHTS", '{"wechat": 1, "alipay": 0}')
    monkeypatch.setenv("TEMPORAL_ADDRESS", "temporal.internal:7233")
    monkeypatch.setenv("TEMPORAL_NAMESPACE", "backoffice-prod")
    s = Settings()
    assert s.payment_timeout_seconds == 30
    assert s.channel_weights == {"wechat": 1, "alipay": 0}
    assert s.temporal_address == "temporal.internal:7233" and not s.embedded_temporal
    assert s.temporal_namespace == "backoffice-prod"
    assert s.embedded_database


def test_defaults_are_the_documented_business_terms(monkeypatch):
    for var in ("BACKOFFICE_PAYMENT_TIMEOUT_SECONDS", "TEMPORAL_ADDRESS"):
        monkeypatch.delenv(var, raising=False)
    s = Settings()
    assert (s.payment_timeout_seconds, s.merchant_accept_timeout_seconds, s.dispatch_accept_timeout_seconds) == (
        900,
        300,
        120,
    )
    assert s.dispatch_max_attempts == 3 and s.auto_confirm_seconds == s.after_sale_window_seconds == 7 * 24 * 3600


PRODUCTION_SECRETS = '{"wechat": "w-real", "alipay": "a-real", "bank": "b-real", "kyc": "k-real", "esign": "e-real"}'
REAL_KEY = "cmVhbC1rZXktMzItYnl0ZXMtbG9uZy0tLS0tLS0tLS0="


def _clear(monkeypatch):
    for var in ("BACKOFFICE_ENV", "BACKOFFICE_DATABASE_URL", "TEMPORAL_ADDRESS", "BACKOFFICE_TEMPORAL_ADDRESS"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.delenv("BACKOFFICE_PARTY_SECRETS", raising=False)
    monkeypatch.delenv("BACKOFFICE_FIELD_ENCRYPTION_KEY", raising=False)


def test_env_is_dev_only_with_both_embedded_servers_unless_set(monkeypatch):
    _clear(monkeypatch)
    assert Settings().environment == "dev"
    monkeypatch.setenv("BACKOFFICE_DATABASE_URL", "postgresql://db.internal/backoffice")
    assert Settings().environment == "production"
    monkeypatch.delenv("BACKOFFICE_DATABASE_URL")
    monkeypatch.setenv("TEMPORAL_ADDRESS", "temporal.internal:7233")
    assert Settings().environment == "production"
    monkeypatch.setenv("BACKOFFICE_ENV", "dev")
    assert Settings().environment == "dev"
    monkeypatch.delenv("TEMPORAL_ADDRESS")
    monkeypatch.setenv("BACKOFFICE_ENV", "production")
    assert Settings().environment == "production"


@pytest.mark.parametrize(
    ("secrets", "key", "names"),
    [
        (None, None, ["BACKOFFICE_PARTY_SECRETS", "BACKOFFICE_FIELD_ENCRYPTION_KEY"]),
        (PRODUCTION_SECRETS, None, ["BACKOFFICE_FIELD_ENCRYPTION_KEY"]),
        (None, REAL_KEY, ["BACKOFFICE_PARTY_SECRETS"]),
        # one published secret among real ones is enough to forge that party's callbacks
        (
            PRODUCTION_SECRETS.replace("k-real", "dev-kyc-secret"),
            REAL_KEY,
            ["BACKOFFICE_PARTY_SECRETS (the dev secret of kyc)"],
        ),
        # the dev key kept as an old decryption key still counts
        (PRODUCTION_SECRETS, f"{REAL_KEY},{DEV_FIELD_KEY}", ["BACKOFFICE_FIELD_ENCRYPTION_KEY"]),
    ],
)
def test_outside_dev_a_process_refuses_to_start_with_a_dev_default(monkeypatch, secrets, key, names):
    _clear(monkeypatch)
    monkeypatch.setenv("BACKOFFICE_DATABASE_URL", "postgresql://db.internal/backoffice")
    if secrets:
        monkeypatch.setenv("BACKOFFICE_PARTY_SECRETS", secrets)
    if key:
        monkeypatch.setenv("BACKOFFICE_FIELD_ENCRYPTION_KEY", key)
    with pytest.raises(SystemExit) as refused:
        ensure_safe_to_start(Settings(), "the API")
    message = str(refused.value.code)
    assert message.startswith("refusing to start the API: BACKOFFICE_ENV is 'production'")
    assert all(n in message for n in names)


def test_own_secrets_start_anywhere_and_dev_defaults_start_in_dev(monkeypatch):
    _clear(monkeypatch)
    monkeypatch.setenv("BACKOFFICE_DATABASE_URL", "postgresql://db.internal/backoffice")
    monkeypatch.setenv("BACKOFFICE_PARTY_SECRETS", PRODUCTION_SECRETS)
    monkeypatch.setenv("BACKOFFICE_FIELD_ENCRYPTION_KEY", REAL_KEY)
    ensure_safe_to_start(Settings(), "the worker")
    monkeypatch.delenv("BACKOFFICE_PARTY_SECRETS")
    monkeypatch.delenv("BACKOFFICE_FIELD_ENCRYPTION_KEY")
    monkeypatch.setenv("BACKOFFICE_ENV", "dev")
    ensure_safe_to_start(Settings(), "the worker")
