"""Every mapped table, imported in one place so Alembic and the tests see the whole schema."""

from db.models.access import ApiKey, AuditEvent, IdempotencyRecord
from db.models.ledger import JournalEntry, JournalLine, LedgerAccount
from db.models.notifications import InboundNotification

__all__ = [
    "ApiKey",
    "AuditEvent",
    "IdempotencyRecord",
    "InboundNotification",
    "JournalEntry",
    "JournalLine",
    "LedgerAccount",
]
