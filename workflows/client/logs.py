"""How every process logs: readable text by default, one JSON object per line with BACKOFFICE_LOG_FORMAT=json.

A JSON line carries what an operator joins on: the Temporal workflow id, run id and activity (from the
details the SDK's `workflow.logger` and `activity.logger` attach), the business number the workflow id is
built from (order, payment, refund, merchant, withdrawal, statement), and the OpenTelemetry trace id
of the span the line was logged in. Identity and bank numbers are never logged (they travel encrypted
and the flows hold only ids; tests scan the suite's logs for them)."""

from __future__ import annotations

import logging
import sys
from typing import Any

from opentelemetry import trace
from pythonjsonlogger.core import RESERVED_ATTRS
from pythonjsonlogger.json import JsonFormatter

from domain.settings import Settings

# Workflow id prefixes (ARCHITECTURE.md §4) and the business id each one is made of.
_BUSINESS_IDS = {
    "order-": "order_no",
    "payment-": "payment_no",
    "refund-": "refund_no",
    "onboarding-": "merchant_id",
    "withdrawal-": "withdrawal_id",
    "statement-": "statement_id",
    "settlement-": "settlement_cycle",
}

_TEXT = "%(asctime)s %(name)s %(levelname)s %(message)s"


class ContextFilter(logging.Filter):
    """Lifts the Temporal details and the current trace onto the record as top-level fields."""

    def filter(self, record: logging.LogRecord) -> bool:
        found: dict[str, Any] = {}
        details = getattr(record, "temporal_activity", None) or getattr(record, "temporal_workflow", None)
        if isinstance(details, dict):
            found["workflow_id"] = details.get("workflow_id")
            found["run_id"] = details.get("workflow_run_id") or details.get("run_id")
            found["workflow_type"] = details.get("workflow_type")
            if "activity_type" in details:
                found["activity"] = details["activity_type"]
                found["attempt"] = details.get("attempt")
        workflow_id = found.get("workflow_id")
        if isinstance(workflow_id, str):
            for prefix, name in _BUSINESS_IDS.items():
                if workflow_id.startswith(prefix):
                    found[name] = workflow_id[len(prefix) :]
                    break
        span = trace.get_current_span().get_span_context()
        if span.is_valid:
            found["trace_id"] = format(span.trace_id, "032x")
            found["span_id"] = format(span.span_id, "016x")
        for key, value in found.items():
            if value is not None and not hasattr(record, key):
                setattr(record, key, value)
        return True


def json_formatter(process: str) -> logging.Formatter:
    # The SDK's nested detail dicts are left out: the filter lifted the fields that matter out of them.
    return JsonFormatter(
        "%(levelname)s %(name)s %(message)s",
        rename_fields={"levelname": "level", "name": "logger"},
        static_fields={"service": process},
        reserved_attrs=[*RESERVED_ATTRS, "temporal_activity", "temporal_workflow", "activity_info", "workflow_info"],
        timestamp="time",
    )


def configure_logging(settings: Settings, process: str, level: int = logging.INFO) -> None:
    """Replace the root handlers with one on stderr in the configured format (call once at process start)."""
    handler = logging.StreamHandler(sys.stderr)
    if settings.log_format.strip().lower() == "json":
        handler.setFormatter(json_formatter(process))
    else:
        handler.setFormatter(logging.Formatter(_TEXT))
    handler.addFilter(ContextFilter())
    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(level)
