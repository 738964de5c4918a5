"""Outside dev, the platform's processes refuse to start while a secret or key is a published default."""

from __future__ import annotations

import os

import pytest

from ops.embedded import free_port
from ops.processes import Child

ARGS = {"api": ["-m", "api"], "worker": ["-m", "workers"], "sandbox": ["-m", "ops.sandbox", "--port", "0"]}


def production_env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("BACKOFFICE_", "TEMPORAL_"))}
    return {
        **env,
        "BACKOFFICE_ENV": "production",
        # Nothing listens there: the refusal must come before any connection is tried.
        "BACKOFFICE_DATABASE_URL": f"postgresql://bo:bo@127.0.0.1:{free_port()}/backoffice",
        "TEMPORAL_ADDRESS": f"127.0.0.1:{free_port()}",
        "BACKOFFICE_API_PORT": str(free_port()),
        **extra,
    }


@pytest.mark.parametrize("process", ["api", "worker", "sandbox"])
def test_a_process_exits_naming_the_setting_when_started_in_production_with_dev_secrets(tmp_path, process):
    log = tmp_path / f"{process}.log"
    child = Child(process, ARGS[process], production_env(), log).start()
    assert child.proc is not None
    code = child.proc.wait(timeout=60)
    out = log.read_text()
    assert code != 0, out
    assert "refusing to start" in out and "BACKOFFICE_ENV is 'production'" in out, out
    assert "BACKOFFICE_PARTY_SECRETS" in out and "BACKOFFICE_FIELD_ENCRYPTION_KEY" in out, out


def test_the_api_names_only_what_is_still_a_default(tmp_path):
    secrets = '{"wechat": "w-own", "alipay": "a-own", "bank": "b-own", "kyc": "k-own", "esign": "e-own"}'
    log = tmp_path / "api.log"
    child = Child("api", ARGS["api"], production_env(BACKOFFICE_PARTY_SECRETS=secrets), log).start()
    assert child.proc is not None
    assert child.proc.wait(timeout=60) != 0
    out = log.read_text()
    assert "BACKOFFICE_FIELD_ENCRYPTION_KEY" in out and "BACKOFFICE_PARTY_SECRETS" not in out, out
