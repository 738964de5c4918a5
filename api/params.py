"""Shared path parameters, validated where they enter: a huge number or an odd string id is a 422 naming
the parameter, never a database error (bigint out of range, a NUL byte, an over-long key)."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import Path, Query

from domain.ids import CODE_ID_PATTERN

BIGINT_MAX = 2**63 - 1

DbId = Annotated[int, Path(ge=1, le=BIGINT_MAX, description="a numeric id (1 to 2^63-1)")]


def _business_no(max_length: int, what: str) -> Any:
    # The platform mints these from letters, digits, '-' and '_' (ORD…, RF…, WD…, C…, cr-…, m-…), and the
    # columns that hold them are this long: anything else cannot name a stored record.
    return Path(
        min_length=1,
        max_length=max_length,
        pattern=rf"^[A-Za-z0-9_-]{{1,{max_length}}}$",
        description=f"{what}: letters, digits, '-' and '_', at most {max_length} long",
    )


CampaignId = Annotated[str, _business_no(40, "a campaign id")]
OrderNo = Annotated[str, _business_no(40, "an order number")]
RefundNo = Annotated[str, _business_no(48, "a refund number")]
WithdrawalId = Annotated[str, _business_no(48, "a withdrawal id")]
CycleId = Annotated[str, _business_no(40, "a settlement cycle id")]
RuleId = Annotated[str, _business_no(64, "a commission rule id")]
MerchantId = Annotated[str, _business_no(64, "a merchant id")]
CategoryCode = Annotated[
    str,
    Path(min_length=1, max_length=64, pattern=r"^[a-z0-9_]+$", description="lower-case letters, digits and '_'"),
]
Party = Annotated[
    str, Path(min_length=1, max_length=20, pattern=r"^[a-z]+$", description="wechat, alipay, bank, kyc or esign")
]
# A merchant id in a query string (a filter) follows the same rule as in a path.
MerchantFilter = Annotated[
    str | None, Query(min_length=1, max_length=64, pattern=CODE_ID_PATTERN, description="only this merchant's")
]
