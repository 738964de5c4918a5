"""Every mapped table, imported in one place so Alembic and the tests see the whole schema."""

from db.models.access import ApiKey, AuditEvent, ConsoleSession, IdempotencyRecord
from db.models.ledger import JournalEntry, JournalLine, LedgerAccount
from db.models.merchants import (
    KycCheckResult,
    MerchantApplication,
    MerchantCategory,
    MerchantEvent,
    MerchantOnboarding,
    MerchantReview,
)
from db.models.notifications import InboundNotification
from db.models.orders import Merchant, Order, OrderEvent, OrderItem, SkuStock, StockReservation
from db.models.payments import Payment, PaymentAttempt
from db.models.promotions import Campaign, Coupon
from db.models.providers import ServiceProvider
from db.models.recon import ReconDiscrepancy, ReconFile, ReconRun, ReconStatementLine
from db.models.refunds import Capture, Refund, RefundAttempt
from db.models.settlement import (
    CommissionRule,
    SettlementCycle,
    SettlementLine,
    SettlementQueued,
    SettlementStatement,
)
from db.models.withdrawals import PayoutBatch, Withdrawal

__all__ = [
    "ApiKey",
    "AuditEvent",
    "Campaign",
    "Capture",
    "CommissionRule",
    "ConsoleSession",
    "Coupon",
    "IdempotencyRecord",
    "InboundNotification",
    "JournalEntry",
    "JournalLine",
    "KycCheckResult",
    "LedgerAccount",
    "Merchant",
    "MerchantApplication",
    "MerchantCategory",
    "MerchantEvent",
    "MerchantOnboarding",
    "MerchantReview",
    "Order",
    "OrderEvent",
    "OrderItem",
    "Payment",
    "PaymentAttempt",
    "PayoutBatch",
    "ReconDiscrepancy",
    "ReconFile",
    "ReconRun",
    "ReconStatementLine",
    "Refund",
    "RefundAttempt",
    "ServiceProvider",
    "SettlementCycle",
    "SettlementLine",
    "SettlementQueued",
    "SettlementStatement",
    "SkuStock",
    "StockReservation",
    "Withdrawal",
]
