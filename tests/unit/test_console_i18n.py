"""Console formatting: yuan exactly, times in the platform's zone, ages of bare dates, the language."""

from __future__ import annotations

from datetime import UTC, datetime

from api.console.i18n import age, language, local, yuan, zone


def test_money_is_yuan_with_two_decimals_exactly() -> None:
    assert [yuan(m) for m in (0, 5, 100, 123456789, -1050)] == ["0.00", "0.05", "1.00", "1,234,567.89", "-10.50"]


def test_times_and_ages_accept_instants_and_bare_dates() -> None:
    tz = zone("Asia/Shanghai")
    assert local("2026-12-01T00:00:00+00:00", tz) == "2026-12-01 08:00:00"
    assert local("2026-11-30", tz) == "2026-11-30 08:00:00"  # a statement's day: no crash on a naive value
    now = datetime(2026, 12, 1, 12, 30, tzinfo=UTC)
    assert age("2026-12-01T10:00:00+00:00", now) == "2h 30m"
    assert age("2026-11-30", now) == "1d 12h"


def test_chinese_only_when_preferred() -> None:
    assert language("zh-CN,zh;q=0.9,en;q=0.5") == "zh"
    assert language("en-US,en;q=0.9,zh;q=0.8") == "en"
    assert language(None) == "en"
