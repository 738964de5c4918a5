"""Writers of the parties' statement files, byte for byte in each party's own format.

They live in the sandbox (the outside world writes these files; the platform only reads them) and
take the platform-side line model (domain.recon.lines), so a property test can write any lines and
read them back with the platform's parsers. Writers stream: they yield the file in chunks.

WeChat Pay: see domain.recon.wechat for the layouts. Alipay: see domain.recon.alipay. The bank's daily
payout statement is defined in domain.recon.bank.
"""

from __future__ import annotations

import csv
import io
import zipfile
from collections.abc import Iterable, Iterator, Mapping
from datetime import date, datetime
from typing import BinaryIO

from domain.recon.bank import BANK_COLUMNS, BANK_SUMMARY
from domain.recon.lines import (
    FEE_DECIMALS,
    FEE_UNITS_PER_MINOR,
    SHANGHAI,
    LineKind,
    StatementLine,
    business_day_bounds,
    format_decimal,
)
from domain.recon.wechat import SUMMARY_LEGACY, SUMMARY_NEW

TIME = "%Y-%m-%d %H:%M:%S"
WECHAT_ALL = (
    "交易时间,公众账号ID,商户号,特约商户号,设备号,微信订单号,商户订单号,用户标识,交易类型,交易状态,付款银行,货币种类,"
    "应结订单金额,代金券金额,微信退款单号,商户退款单号,退款金额,充值券退款金额,退款类型,退款状态,商品名称,商户数据包,"
    "手续费,费率,订单金额,申请退款金额,费率备注"
).split(",")
_REFUND_ONLY = {"微信退款单号", "商户退款单号", "退款金额", "充值券退款金额", "退款类型", "退款状态", "申请退款金额"}
WECHAT_LAYOUTS = {
    "ALL": WECHAT_ALL,
    "SUCCESS": [c for c in WECHAT_ALL if c not in _REFUND_ONLY],
    "REFUND": [
        *WECHAT_ALL[: WECHAT_ALL.index("代金券金额") + 1],
        "退款申请时间",
        "退款成功时间",
        *WECHAT_ALL[WECHAT_ALL.index("代金券金额") + 1 :],
    ],
    "LEGACY": (
        "交易时间,公众账号ID,商户号,子商户号,设备号,微信订单号,商户订单号,用户标识,交易类型,交易状态,付款银行,货币种类,"
        "总金额,代金券或立减优惠金额,微信退款单号,商户退款单号,退款金额,代金券或立减优惠退款金额,退款类型,退款状态,"
        "商品名称,商户数据包,手续费,费率"
    ).split(","),
}
WECHAT_SUMMARY = list(SUMMARY_NEW)
WECHAT_LEGACY_SUMMARY = list(SUMMARY_LEGACY)

ALIPAY_DETAIL = (
    "支付宝交易号,商户订单号,业务类型,商品名称,创建时间,完成时间,门店编号,门店名称,操作员,终端号,对方账户,"
    "订单金额（元）,商家实收（元）,支付宝红包（元）,集分宝（元）,支付宝优惠（元）,商家优惠（元）,券核销金额（元）,券名称,"
    "商家红包消费金额（元）,卡消费金额（元）,退款批次号/请求号,服务费（元）,分润（元）,备注"
).split(",")
ALIPAY_SUMMARY = (
    "门店编号,门店名称,交易订单总笔数,退款订单总笔数,订单金额（元）,商家实收（元）,支付宝优惠（元）,商家优惠（元）,"
    "卡消费金额（元）,服务费（元）,分润（元）,实收净额（元）"
).split(",")
RULE = "-" * 41


def _csv_line(values: Iterable[str]) -> str:
    buf = io.StringIO()
    csv.writer(buf, lineterminator="\r\n").writerow(values)
    return buf.getvalue()


def _yuan(minor: int) -> str:
    return format_decimal(minor, 2)


def _local(at: datetime) -> str:
    return at.astimezone(SHANGHAI).strftime(TIME)


def rate_text(rate_bp: int) -> str:
    """A rate in basis points as WeChat prints it: 60 → ``0.60%``."""
    return f"{format_decimal(rate_bp, 2)}%"


def write_wechat(
    lines: Iterable[StatementLine],
    layout: str,
    *,
    appid: str = "wx2421b1c4370ec43b",
    mch_id: str = "1900000109",
    rate_bp: int = 60,
    descriptions: Mapping[str, str] | None = None,
) -> Iterator[bytes]:
    """A WeChat trade bill; ``layout`` is ALL, SUCCESS, REFUND or LEGACY (the legacy ALL layout)."""
    columns = WECHAT_LAYOUTS[layout]
    legacy = layout == "LEGACY"
    yield "\ufeff".encode() + _csv_line(columns).encode()
    count = paid = refunded = fee = 0
    for line in lines:
        refund = line.kind is LineKind.REFUND
        amount, refund_amount = (0, line.amount_minor) if refund else (line.amount_minor, 0)
        row = {
            "交易时间": _local(line.occurred_at),
            "公众账号ID": appid,
            "商户号": mch_id,
            "设备号": "",
            "微信订单号": line.party_no,
            "商户订单号": (line.order_ref or "") if refund else line.our_no,
            "用户标识": "oUpF8uMuAJO_M2pxb1Q9zNjWeS6o",
            "交易类型": "JSAPI",
            "交易状态": "REFUND" if refund else line.status,
            "付款银行": "OTHERS",
            "货币种类": line.currency,
            "应结订单金额": _yuan(amount),
            "总金额": _yuan(amount),
            "微信退款单号": f"50{line.party_no}" if refund else "",
            "商户退款单号": line.our_no if refund else "",
            "退款金额": _yuan(refund_amount),
            "退款类型": "ORIGINAL" if refund else "",
            "退款状态": line.status if refund else "",
            "退款申请时间": _local(line.occurred_at) if refund else "",
            "退款成功时间": _local(line.occurred_at) if refund and line.status == "SUCCESS" else "",
            "商品名称": (descriptions or {}).get(line.order_ref or line.our_no, ""),
            "手续费": format_decimal(line.fee, FEE_DECIMALS),
            "费率": rate_text(rate_bp),
            "订单金额": _yuan(amount),
            "申请退款金额": _yuan(refund_amount),
        }
        count, paid, refunded, fee = count + 1, paid + amount, refunded + refund_amount, fee + line.fee
        yield _csv_line("`" + row.get(c, "0.00" if "金额" in c else "") for c in columns).encode()
    if legacy:
        totals = [str(count), _yuan(paid), _yuan(refunded), "0.00", format_decimal(fee, FEE_DECIMALS)]
        yield _csv_line(WECHAT_LEGACY_SUMMARY).encode()
    else:
        fees = format_decimal(fee, FEE_DECIMALS)
        totals = [str(count), _yuan(paid), _yuan(refunded), "0.00", fees, _yuan(paid), _yuan(refunded)]
        yield _csv_line(WECHAT_SUMMARY).encode()
    yield _csv_line("`" + v for v in totals).encode()


class _GbkName(zipfile.ZipInfo):
    """Alipay's zip entries carry GBK-encoded names without the UTF-8 flag; zipfile would write UTF-8."""

    def _encodeFilenameFlags(self) -> tuple[bytes, int]:
        return self.filename.encode("gbk"), self.flag_bits


def _cn_time(at: datetime) -> str:
    return at.astimezone(SHANGHAI).strftime("%Y年%m月%d日 %H:%M:%S")


def _alipay_head(pid: str, day: date, title: str, listing: str) -> list[str]:
    start, end = business_day_bounds(day)
    return [
        f"#支付宝{title}查询\r\n",
        f"#账号：[{pid}0156]\r\n",
        f"#起始日期：[{_cn_time(start)}]   终止日期：[{_cn_time(end)}]\r\n",
        f"#{RULE}{listing}列表{RULE}\r\n",
    ]


def write_alipay_zip(
    out: BinaryIO, lines: Iterable[StatementLine], *, pid: str, day: date, exported_at: datetime
) -> None:
    """The ``.csv.zip`` Alipay's bill download URL serves: ``{pid}_{yyyyMMdd}_业务明细.csv`` and
    ``…_业务明细(汇总).csv``, GBK content and GBK names. Refund rows are negative; the fee column
    (服务费) is what the merchant pays, so negative on a payment and positive on a refund."""
    stem = f"{pid}_{day:%Y%m%d}_业务明细"
    n_pay = n_ref = paid = refunded = fee = 0
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as zf:
        info = _GbkName(f"{stem}.csv", date_time=exported_at.astimezone(SHANGHAI).timetuple()[:6])
        info.compress_type = zipfile.ZIP_DEFLATED
        with zf.open(info, "w") as entry:
            entry.write("".join(_alipay_head(pid, day, "业务明细", "业务明细")).encode("gbk"))
            entry.write(_csv_line(ALIPAY_DETAIL).encode("gbk"))
            for line in lines:
                if line.fee % FEE_UNITS_PER_MINOR:
                    raise ValueError("Alipay prints fees in fen: a sub-fen fee cannot be written")
                refund = line.kind is LineKind.REFUND
                signed = -line.amount_minor if refund else line.amount_minor
                row = {
                    "支付宝交易号": line.party_no + "\t",
                    "商户订单号": ((line.order_ref or "") if refund else line.our_no) + "\t",
                    "业务类型": line.status,
                    "创建时间": _local(line.occurred_at),
                    "完成时间": _local(line.occurred_at),
                    "对方账户": "138****0000",
                    "订单金额（元）": _yuan(signed),
                    "商家实收（元）": _yuan(signed),
                    "退款批次号/请求号": (line.our_no + "\t") if refund else "",
                    "服务费（元）": _yuan(-line.fee // FEE_UNITS_PER_MINOR),
                }
                entry.write(_csv_line(row.get(c, "0.00" if "（元）" in c else "") for c in ALIPAY_DETAIL).encode("gbk"))
                if refund:
                    n_ref, refunded = n_ref + 1, refunded + line.amount_minor
                else:
                    n_pay, paid = n_pay + 1, paid + line.amount_minor
                fee += line.fee // FEE_UNITS_PER_MINOR
            foot = [
                f"#{RULE}业务明细列表结束{RULE}\r\n",
                f"#交易合计：{n_pay}笔，商家实收共{_yuan(paid)}元，商家优惠共0.00元\r\n",
                f"#退款合计：{n_ref}笔，商家实收共{_yuan(-refunded)}元，商家优惠共0.00元\r\n",
                f"#导出时间：[{_cn_time(exported_at)}]\r\n",
            ]
            entry.write("".join(foot).encode("gbk"))
        info = _GbkName(f"{stem}(汇总).csv", date_time=exported_at.astimezone(SHANGHAI).timetuple()[:6])
        info.compress_type = zipfile.ZIP_DEFLATED
        net = paid - refunded
        sums = [str(n_pay), str(n_ref), _yuan(net), _yuan(net), "0.00", "0.00", "0.00", _yuan(-fee), "0.00"]
        body = [
            *_alipay_head(pid, day, "业务汇总", "业务汇总"),
            _csv_line(ALIPAY_SUMMARY),
            _csv_line(["", "", *sums, _yuan(net - fee)]),
            _csv_line(["合计", "", *sums, _yuan(net - fee)]),
            f"#{RULE}业务汇总列表结束{RULE}\r\n",
            f"#导出时间：[{_cn_time(exported_at)}]\r\n",
        ]
        zf.writestr(info, "".join(body).encode("gbk"))


def write_bank(lines: Iterable[StatementLine], *, batches: Mapping[str, str] | None = None) -> Iterator[bytes]:
    """The bank's daily payout statement (format: domain.recon.bank)."""
    yield _csv_line(BANK_COLUMNS).encode()
    count = n_paid = n_failed = paid = failed = 0
    for line in lines:
        local = line.occurred_at.astimezone(SHANGHAI)
        row = [
            line.our_no,
            (batches or {}).get(line.our_no, ""),
            _yuan(line.amount_minor),
            line.currency,
            line.status,
            line.party_no,
            local.date().isoformat(),
            local.strftime(TIME),
        ]
        yield _csv_line(row).encode()
        count += 1
        if line.status == "PAID":
            n_paid, paid = n_paid + 1, paid + line.amount_minor
        else:
            n_failed, failed = n_failed + 1, failed + line.amount_minor
    yield _csv_line(BANK_SUMMARY).encode()
    yield _csv_line([str(count), str(n_paid), _yuan(paid), str(n_failed), _yuan(failed)]).encode()
