"""Who may call the API: roles carried by API keys."""

from enum import StrEnum


class Role(StrEnum):
    SERVICE = "service"
    MERCHANT = "merchant"
    AUDITOR = "auditor"
    FINANCE = "finance"
    OPERATOR = "operator"
    ADMIN = "admin"


# The keys `ops dev` writes for local use: every role but merchant, which is bound to one merchant.
DEV_KEY_ROLES = (Role.ADMIN, Role.SERVICE, Role.AUDITOR, Role.FINANCE, Role.OPERATOR)
