"""The typed search attributes every flow keeps current, so operators can filter flows in the UI.

Registered at start (dev server flags, or the operator API on a real cluster) by `ops`.
"""

from datetime import datetime

from temporalio.common import SearchAttributeKey

BO_FLOW = SearchAttributeKey.for_keyword("BoFlow")
BO_STAGE = SearchAttributeKey.for_keyword("BoStage")
BO_STAGE_SINCE = SearchAttributeKey.for_datetime("BoStageSince")
BO_ORDER_NO = SearchAttributeKey.for_keyword("BoOrderNo")
BO_MERCHANT_ID = SearchAttributeKey.for_keyword("BoMerchantId")
BO_AMOUNT_MINOR = SearchAttributeKey.for_int("BoAmountMinor")

ALL = (BO_FLOW, BO_STAGE, BO_STAGE_SINCE, BO_ORDER_NO, BO_MERCHANT_ID, BO_AMOUNT_MINOR)

_CLI_TYPE: dict[type, str] = {str: "Keyword", datetime: "Datetime", int: "Int"}


def cli_flags() -> list[str]:
    """`--search-attribute Name=Type` flags for `temporal server start-dev`."""
    flags: list[str] = []
    for key in ALL:
        flags += ["--search-attribute", f"{key.name}={_CLI_TYPE[key.value_type]}"]
    return flags
