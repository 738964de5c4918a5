"""Console labels in English and Chinese, chosen by Accept-Language; money in yuan, times in the platform's
time zone."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

LABELS: dict[str, tuple[str, str]] = {
    "title": ("Back office", "运营后台"),
    "sign_in": ("Sign in", "登录"),
    "sign_out": ("Sign out", "退出"),
    "api_key": ("API key", "API 密钥"),
    "overview": ("Overview", "概览"),
    "finance": ("Approvals", "财务审批"),
    "auditor": ("Reviews", "资质审核"),
    "ops": ("Stuck flows", "卡住的流程"),
    "ledger": ("Trial balance", "试算平衡"),
    "orders": ("Orders", "订单"),
    "merchant": ("Merchant", "商户"),
    "statement": ("Statement", "结算单"),
    "kind": ("Kind", "类型"),
    "subject": ("Subject", "对象"),
    "amount": ("Amount", "金额"),
    "age": ("Waiting", "等待时长"),
    "status": ("Status", "状态"),
    "since": ("Since", "起始时间"),
    "approve": ("Approve", "批准"),
    "reject": ("Reject", "驳回"),
    "request_changes": ("Request changes", "要求修改"),
    "reason": ("Reason", "原因"),
    "note": ("Note", "备注"),
    "resolve_paid": ("Bank paid it", "银行已付款"),
    "resolve_failed": ("Bank failed it", "银行付款失败"),
    "nothing_waiting": ("Nothing is waiting.", "没有待处理事项。"),
    "orders_per_day": ("Orders per day", "每日订单数"),
    "paid_per_day": ("Paid per day (yuan)", "每日实收（元）"),
    "search": ("Find", "查询"),
    "order_no": ("Order number", "订单号"),
    "timeline": ("Timeline", "时间线"),
    "payments": ("Payments", "支付"),
    "refunds": ("Refunds", "退款"),
    "lines": ("Lines", "明细"),
    "download_csv": ("Download CSV", "下载 CSV"),
    "prepared_by": ("Adjusted by", "调整人"),
    "checker_rule": (
        "The person who adjusted a statement may not approve it.",
        "调整结算单的人不能批准该结算单。",
    ),
    "balanced": ("Balanced", "借贷平衡"),
    "records_agree": ("Ledger agrees with the records", "账务与业务一致"),
    "open_in_temporal": ("Open in Temporal", "在 Temporal 中打开"),
    "flow": ("Flow", "流程"),
    "stage": ("Stage", "阶段"),
    "overrun": ("Past its SLA by", "超出时限"),
    "balance": ("Balance", "余额"),
    "available": ("Available", "可用"),
    "withdrawing": ("Being withdrawn", "提现中"),
    "unsettled": ("Not yet settled", "待结算"),
    "withdrawals": ("Withdrawals", "提现"),
    "statements": ("Statements", "结算单"),
    "application": ("Application", "入驻申请"),
    "refused": ("Refused", "操作被拒绝"),
    "done": ("Done", "已完成"),
    "forbidden": ("This page is not for your role.", "您的角色无权访问此页面。"),
}


def language(accept_language: str | None) -> str:
    """'zh' when the browser prefers Chinese over English, else 'en' (q-values respected)."""
    best, best_q = "en", -1.0
    for part in (accept_language or "").split(","):
        tag, _, params = part.strip().partition(";")
        q = 1.0
        if params.strip().startswith("q="):
            try:
                q = float(params.strip()[2:])
            except ValueError:
                q = 0.0
        lang = tag.strip().lower()[:2]
        if lang in ("zh", "en") and q > best_q:
            best, best_q = lang, q
    return best


def labels(lang: str) -> dict[str, str]:
    index = 1 if lang == "zh" else 0
    return {key: pair[index] for key, pair in LABELS.items()}


def yuan(minor: int | None) -> str:
    """Minor units as yuan with two decimals, exactly (no float on the way)."""
    if minor is None:
        return ""
    sign = "-" if minor < 0 else ""
    whole, cents = divmod(abs(minor), 100)
    return f"{sign}{whole:,}.{cents:02d}"


def zone(name: str) -> timezone | ZoneInfo:
    try:
        return ZoneInfo(name)
    except ZoneInfoNotFoundError:  # no tz database on the machine: the platform's zone has no DST
        return timezone(timedelta(hours=8), name)


def _instant(value: datetime | str) -> datetime:
    """An API time as an aware instant (a bare date, such as a statement's day, is its UTC midnight)."""
    at = datetime.fromisoformat(value) if isinstance(value, str) else value
    return at if at.tzinfo is not None else at.replace(tzinfo=UTC)


def local(value: datetime | str | None, tz: timezone | ZoneInfo) -> str:
    if value is None or value == "":
        return ""
    return _instant(value).astimezone(tz).strftime("%Y-%m-%d %H:%M:%S")


def age(value: datetime | str | None, now: datetime) -> str:
    if value is None or value == "":
        return ""
    at = _instant(value)
    seconds = max(0, int((now - at).total_seconds()))
    days, rest = divmod(seconds, 86400)
    hours, rest = divmod(rest, 3600)
    return f"{days}d {hours}h" if days else f"{hours}h {rest // 60}m"
