"""The worker's metrics: the Temporal SDK's own (its Prometheus exporter) and the business figures.

Two endpoints, because the SDK's exporter lives in its Rust core and cannot serve Python collectors:
`worker_sdk_metrics_port` (workflow/activity task latencies, failures, slots, sticky cache) and
`worker_metrics_port` (business gauges and counters, the queue's backlog, the Python process). The business
figures are computed when Prometheus scrapes, from the database and from Temporal (the same stuck-flow query
as GET /v1/ops/stuck), on the worker's own event loop and connections."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Iterator
from typing import Any

from prometheus_client import REGISTRY, start_http_server
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from temporalio.client import Client
from temporalio.runtime import PrometheusConfig, Runtime, TelemetryConfig

from db.engine import unit_of_work
from db.metrics import BusinessFigures, business_figures
from domain.settings import Settings
from workflows.client.queues import MAIN
from workflows.client.stuck import stuck_flows
from workflows.client.task_queues import QueueState, describe

log = logging.getLogger("workers.telemetry")

SCRAPE_TIMEOUT_SECONDS = 10
STUCK_LIMIT = 10_000  # the gauge counts every stuck flow, not the first page the API lists


def use_sdk_metrics(settings: Settings) -> None:
    """Make the SDK runtime export Prometheus metrics; call before the first client connects."""
    if not settings.worker_sdk_metrics_port:
        return
    address = f"{settings.metrics_host}:{settings.worker_sdk_metrics_port}"
    config = PrometheusConfig(
        bind_address=address, counters_total_suffix=True, unit_suffix=True, durations_as_seconds=True
    )
    try:
        Runtime.set_default(Runtime(telemetry=TelemetryConfig(metrics=config)), error_if_already_set=False)
    except Exception:
        # A taken port must not keep the worker from working: flows matter more than their metrics.
        log.exception("the Temporal SDK metrics cannot listen on %s; running without them", address)
        return
    log.info("Temporal SDK metrics on http://%s/metrics", address)


def serve_business_metrics(settings: Settings, sessions: async_sessionmaker[AsyncSession], client: Client) -> None:
    """Serve the business figures (and the process collectors) on `worker_metrics_port`; call on the loop."""
    if not settings.worker_metrics_port:
        return
    REGISTRY.register(BusinessCollector(asyncio.get_running_loop(), sessions, client, settings))
    try:
        start_http_server(settings.worker_metrics_port, addr=settings.metrics_host)
    except OSError:
        log.exception("the worker's metrics cannot listen on port %s; running on", settings.worker_metrics_port)
        return
    log.info("worker metrics on http://%s:%s/metrics", settings.metrics_host, settings.worker_metrics_port)


class BusinessCollector(Collector):
    """Asked from the metrics server's thread; does its I/O on the worker's loop and waits for it."""

    def __init__(
        self,
        loop: asyncio.AbstractEventLoop,
        sessions: async_sessionmaker[AsyncSession],
        client: Client,
        settings: Settings,
    ) -> None:
        self._loop = loop
        self._sessions = sessions
        self._client = client
        self._settings = settings

    def describe(self) -> list[Metric]:
        # Registering asks a collector for its names, by collecting unless it describes itself; collecting
        # here would wait on the loop that is registering it.
        return []

    async def _gather(self) -> tuple[BusinessFigures, list[dict[str, Any]], dict[str, QueueState]]:
        async with unit_of_work(self._sessions) as session:
            figures = await business_figures(session)
        stuck = await stuck_flows(self._client, self._settings, limit=STUCK_LIMIT)
        queues = await describe(self._client, MAIN, poller_max_age_seconds=self._settings.ready_poller_max_age_seconds)
        return figures, stuck, queues

    def collect(self) -> Iterator[Metric]:
        started = time.perf_counter()
        ok = GaugeMetricFamily("backoffice_metrics_collect_ok", "1 when the business figures were collected.")
        try:
            future = asyncio.run_coroutine_threadsafe(self._gather(), self._loop)
            figures, stuck, queues = future.result(timeout=SCRAPE_TIMEOUT_SECONDS)
        except Exception:
            log.exception("collecting the business metrics failed")
            ok.add_metric([], 0)
            yield ok
            return
        yield from figure_metrics(figures)
        yield from stuck_metrics(stuck)
        yield from queue_metrics(queues)
        ok.add_metric([], 1)
        yield ok
        took = GaugeMetricFamily("backoffice_metrics_collect_seconds", "Time the last collection took.")
        took.add_metric([], time.perf_counter() - started)
        yield took


def _by(name: str, doc: str, label: str, values: dict[str, int]) -> GaugeMetricFamily:
    gauge = GaugeMetricFamily(name, doc, labels=[label])
    for key, n in sorted(values.items()):
        gauge.add_metric([key], n)
    return gauge


def figure_metrics(f: BusinessFigures) -> Iterator[Metric]:
    # Orders are never deleted and COMPLETED and CANCELLED are final: these counts only grow, so they are counters.
    for name, doc, n in (
        ("backoffice_orders_created", "Orders created.", sum(f.orders_by_status.values())),
        ("backoffice_orders_completed", "Orders completed.", f.orders_by_status.get("COMPLETED", 0)),
        ("backoffice_orders_cancelled", "Orders cancelled.", f.orders_by_status.get("CANCELLED", 0)),
    ):
        counter = CounterMetricFamily(name, doc)
        counter.add_metric([], n)
        yield counter
    yield _by("backoffice_orders", "Orders by current status.", "status", f.orders_by_status)
    count = CounterMetricFamily(
        "backoffice_payments_captured", "Captures (money a channel took).", labels=["channel", "currency"]
    )
    amount = CounterMetricFamily(
        "backoffice_payments_captured_amount_minor",
        "Money captured, in minor units of the currency.",
        labels=["channel", "currency"],
    )
    for (channel, currency), (n, minor) in sorted(f.captures.items()):
        count.add_metric([channel, currency], n)
        amount.add_metric([channel, currency], minor)
    yield count
    yield amount
    yield _by("backoffice_refunds", "Refunds by outcome (status).", "status", f.refunds_by_status)
    yield _by("backoffice_withdrawals", "Withdrawals by status.", "status", f.withdrawals_by_status)
    yield _by("backoffice_settlement_statements", "Settlement statements by status.", "status", f.statements_by_status)
    pending = GaugeMetricFamily(
        "backoffice_settlement_statements_pending_approval", "Settlement statements waiting for finance."
    )
    pending.add_metric([], f.statements_by_status.get("PENDING_APPROVAL", 0))
    yield pending
    now = time.time()
    open_ = GaugeMetricFamily(
        "backoffice_recon_discrepancies_open", "Reconciliation differences not resolved.", labels=["type", "status"]
    )
    oldest = GaugeMetricFamily(
        "backoffice_recon_discrepancy_oldest_open_age_seconds",
        "Age of the oldest unresolved reconciliation difference.",
        labels=["type", "status"],
    )
    for (kind, status), (n, since) in sorted(f.discrepancies_open.items()):
        open_.add_metric([kind, status], n)
        oldest.add_metric([kind, status], max(0.0, now - since.timestamp()))
    yield open_
    yield oldest
    balanced = GaugeMetricFamily(
        "backoffice_ledger_trial_balance_ok", "1 when the ledger's trial balance holds, 0 when it does not."
    )
    balanced.add_metric([], 1 if f.ledger_balanced else 0)
    yield balanced


def stuck_metrics(stuck: list[dict[str, Any]]) -> Iterator[Metric]:
    counts: dict[tuple[str, str], int] = {}
    worst: dict[tuple[str, str], float] = {}
    for s in stuck:
        key = (str(s["flow"] or s["type"]), str(s["stage"]))
        counts[key] = counts.get(key, 0) + 1
        worst[key] = max(worst.get(key, 0.0), float(s["overrun_seconds"]))
    labels = ["flow", "stage"]
    gauge = GaugeMetricFamily(
        "backoffice_stuck_flows", "Running flows resting in a stage past its SLA (GET /v1/ops/stuck).", labels=labels
    )
    overrun = GaugeMetricFamily(
        "backoffice_stuck_flow_max_overrun_seconds",
        "How far past its stage's SLA the worst stuck flow is.",
        labels=labels,
    )
    for key in sorted(counts):
        gauge.add_metric(list(key), counts[key])
        overrun.add_metric(list(key), worst[key])
    yield gauge
    yield overrun


def queue_metrics(queues: dict[str, QueueState]) -> Iterator[Metric]:
    labels = ["task_queue", "kind"]
    backlog = GaugeMetricFamily(
        "backoffice_task_queue_backlog", "Tasks waiting for a worker (approximate).", labels=labels
    )
    age = GaugeMetricFamily(
        "backoffice_task_queue_backlog_age_seconds", "Age of the oldest waiting task.", labels=labels
    )
    pollers = GaugeMetricFamily("backoffice_task_queue_pollers", "Workers' pollers seen recently.", labels=labels)
    for kind, state in sorted(queues.items()):
        backlog.add_metric([MAIN, kind], state.backlog)
        age.add_metric([MAIN, kind], state.backlog_age_seconds)
        pollers.add_metric([MAIN, kind], state.pollers)
    yield backlog
    yield age
    yield pollers
