from domain.settings import Settings


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
