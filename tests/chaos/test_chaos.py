"""The short chaos run (`python -m ops chaos`, 3 kills): a mixed workload while the worker is killed at
random, on servers of its own, must end with every flow finished and every effect exactly once."""

from __future__ import annotations

import json
import subprocess
import sys


def test_three_worker_kills_lose_nothing_and_pay_nothing_twice() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "ops", "chaos", "--kills", "3", "--orders", "4", "--seeded", "400"],
        capture_output=True,
        text=True,
        timeout=600,
    )
    lines = done.stdout.strip().splitlines()
    assert lines, done.stderr[-3000:]
    verdict = json.loads(lines[-1])
    assert verdict["kills"] == 3, done.stdout[-3000:]
    assert (verdict["duplicates"], verdict["lost"], verdict["balanced"]) == (0, 0, True), done.stdout[-3000:]
    assert verdict["sandbox_out_minor"] == verdict["ledger_out_minor"] > 0
    assert done.returncode == 0, done.stderr[-3000:]
