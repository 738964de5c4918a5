"""The operations assets name only metrics the stack exports: every alert rule and dashboard query."""

from __future__ import annotations

import json
import re
from pathlib import Path

import httpx
import yaml

ASSETS = Path(__file__).resolve().parents[2] / "ops" / "observability"

_FUNCTIONS_AND_WORDS = re.compile(r"\b(by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)")
_STRINGS = re.compile(r'"[^"]*"')
_MATCHERS = re.compile(r"\{[^}]*\}")
_RANGES = re.compile(r"\[[^\]]*\]")
_KEYWORDS = {"and", "or", "unless", "bool", "offset", "inf", "nan"}


def metric_names(expr: str) -> set[str]:
    """The metric names a PromQL expression reads (identifiers that are not functions, labels or keywords)."""
    bare = _RANGES.sub(" ", _MATCHERS.sub(" ", _STRINGS.sub(" ", _FUNCTIONS_AND_WORDS.sub(" ", expr))))
    tokens = re.finditer(r"[a-zA-Z_:][a-zA-Z0-9_:]*(\s*\()?", bare)
    return {m.group(0) for m in tokens if not m.group(1) and m.group(0).lower() not in _KEYWORDS}


def rule_expressions() -> dict[str, str]:
    rules = yaml.safe_load((ASSETS / "alerts.yml").read_text())
    return {r["alert"]: r["expr"] for g in rules["groups"] for r in g["rules"]}


def dashboard_expressions() -> dict[str, str]:
    dash = json.loads((ASSETS / "grafana-dashboard.json").read_text())
    return {f"{p['title']} [{t['refId']}]": t["expr"] for p in dash["panels"] for t in p["targets"]}


def exported(text: str) -> set[str]:
    """Every series name an exposition offers, including families that have no sample yet."""
    found = set()
    for line in text.splitlines():
        if line.startswith("# TYPE "):
            _, _, name, kind = line.split(maxsplit=3)
            found.add(name)
            suffixes = {"counter": ["_total"], "histogram": ["_bucket", "_sum", "_count"]}.get(kind, [])
            found.update(name + s for s in suffixes)
        elif line and not line.startswith("#"):
            found.add(re.split(r"[{\s]", line, maxsplit=1)[0])
    return found


def test_the_extractor_finds_metric_names():
    assert metric_names(
        'histogram_quantile(0.95, sum by (le, route) (rate(x_bucket{route="/a", s!~"b"}[5m]))) > 1 and on (k) y'
    ) == {"x_bucket", "y"}


async def test_every_metric_the_rules_and_the_dashboard_name_is_exported(shop):
    rules, panels = rule_expressions(), dashboard_expressions()
    assert len(rules) >= 6 and len(panels) >= 10
    for alert in (
        "BackofficeFlowStuck",
        "BackofficeApprovalWaitingPastReminder",
        "BackofficeTrialBalanceUnbalanced",
        "BackofficeWorkerBacklog",
        "BackofficeCallbackSignatureFailuresSpiking",
        "BackofficeReconDiscrepancyPastHold",
    ):
        assert alert in rules
    # One order through its workflows, so the SDK has recorded its task and activity metrics.
    merchant_id = await shop.merchant()
    placed = await shop.placed(merchant_id)
    assert (await shop.pay(placed["payment"]["pay_url"])).status_code == 200
    await shop.reaches(placed["order_no"], "AWAITING_MERCHANT")
    offered: set[str] = set()
    async with httpx.AsyncClient(timeout=30) as client:
        for url in shop.services.metrics_urls().values():
            r = await client.get(url)
            assert r.status_code == 200, url
            offered |= exported(r.text)
    missing = {
        where: sorted(metric_names(expr) - offered)
        for where, expr in {**rules, **panels}.items()
        if metric_names(expr) - offered
    }
    assert not missing, missing
