"""Who may call the API: roles carried by API keys, and the people those keys belong to."""

import re
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

# A person is how maker-checker tells people apart (one person may hold several keys), so it is
# a plain, case-insensitive handle: letters, digits and . _ @ + - (an e-mail address fits).
PERSON_MAX_LENGTH = 100
_PERSON = re.compile(r"[a-z0-9][a-z0-9._@+-]*")


def normalize_person(raw: str) -> str:
    """The canonical form of a person handle; ValueError names what is wrong with a bad one."""
    person = raw.strip().lower()
    if not person or len(person) > PERSON_MAX_LENGTH:
        raise ValueError(f"a person is 1 to {PERSON_MAX_LENGTH} characters")
    if not _PERSON.fullmatch(person):
        raise ValueError("a person may hold only letters, digits and . _ @ + - (and starts with a letter or digit)")
    return person


def same_person(a: str | None, b: str | None) -> bool:
    """Maker-checker: two decisions by the same person, whichever of their keys they used.

    An unknown side (None, or a record from before keys carried people) is never the same person:
    those records are still guarded by the key-id comparisons the flows kept."""
    if not a or not b:
        return False
    return a.strip().lower() == b.strip().lower()


def actor_label(role: str, person: str, key_id: int | None) -> str:
    """How the audit log names who decided: role, person and the key they used."""
    return f"{role}:{person}#{key_id}" if key_id is not None else f"{role}:{person}"
