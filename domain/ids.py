"""Ids that become part of a ledger account code, and currencies: validated where they enter (pure).

An id such as a promoter's ends up in `promoter:{id}:payable`; one with a colon or a space would be a
code outside the chart of accounts and would stop a whole settlement cycle at posting time. So every
request field that can reach an account code takes this one pattern, and a bad one is a 422 that
names the field, before anything is stored or started.
"""

from __future__ import annotations

import re
from typing import Annotated

from pydantic import AfterValidator, StringConstraints

CODE_ID_PATTERN = r"^[A-Za-z0-9_-]{1,64}$"
CURRENCY_PATTERN = r"^[A-Z]{3}$"

CodeId = Annotated[str, StringConstraints(pattern=CODE_ID_PATTERN)]
"""An id that may become a segment of an account code: letters, digits, `_` and `-`, 1 to 64 long."""

_CODE_ID = re.compile(CODE_ID_PATTERN)


def is_code_id(value: str) -> bool:
    return _CODE_ID.fullmatch(value) is not None


def _upper_iso(value: str) -> str:
    if re.fullmatch(CURRENCY_PATTERN, value) is None:
        raise ValueError(f"currency {value!r} must be an ISO 4217 code: three upper-case letters")
    return value


CurrencyCode = Annotated[str, AfterValidator(_upper_iso)]
"""An ISO 4217 currency code as the ledger writes it (upper-case, three letters)."""
