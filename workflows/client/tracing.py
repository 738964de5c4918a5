"""OpenTelemetry tracing, on only when an OTLP endpoint is configured (standard OTEL_* variables).

Spans run from the API request (FastAPI instrumentation) through the Temporal client's start or update,
the workflow and each activity (the SDK's TracingInterceptor carries the context in Temporal headers)
out to the outside party's HTTP call (httpx instrumentation). Unconfigured, nothing is installed: no
interceptor, no instrumentation, the API's default no-op tracer, so tracing costs nothing."""

from __future__ import annotations

import os
from typing import TYPE_CHECKING

from temporalio.client import Client
from temporalio.worker.workflow_sandbox import SandboxedWorkflowRunner, SandboxRestrictions

if TYPE_CHECKING:
    import httpx

_ENDPOINT_VARIABLES = ("OTEL_EXPORTER_OTLP_ENDPOINT", "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT")
_enabled = False


def tracing_configured() -> bool:
    if os.environ.get("OTEL_SDK_DISABLED", "").strip().lower() == "true":
        return False
    return any(os.environ.get(name) for name in _ENDPOINT_VARIABLES)


def setup_tracing(service: str) -> bool:
    """Install the global tracer provider exporting by OTLP/HTTP; False (and nothing done) when unconfigured."""
    global _enabled
    if _enabled or not tracing_configured():
        return _enabled
    from opentelemetry import trace
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
    from opentelemetry.sdk.resources import SERVICE_NAME, Resource
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import BatchSpanProcessor

    # OTEL_SERVICE_NAME, OTEL_RESOURCE_ATTRIBUTES and the exporter's variables still apply (the SDK reads them).
    resource = Resource.create({SERVICE_NAME: os.environ.get("OTEL_SERVICE_NAME") or f"backoffice-{service}"})
    provider = TracerProvider(resource=resource)
    provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter()))
    trace.set_tracer_provider(provider)
    _enabled = True
    return True


def shutdown_tracing() -> None:
    """Flush the spans still batched (a stopping process would lose its last ones)."""
    if not _enabled:
        return
    from opentelemetry import trace

    provider = trace.get_tracer_provider()
    shutdown = getattr(provider, "shutdown", None)
    if shutdown is not None:
        shutdown()


def traced(client: Client) -> Client:
    """The same connection with the tracing interceptor (a worker built on it traces workflows and activities)."""
    if not _enabled:
        return client
    from temporalio.contrib.opentelemetry import TracingInterceptor

    config = client.config()
    config["interceptors"] = [*config["interceptors"], TracingInterceptor()]
    return Client(**config)


# The flows' own code, and what they import passed through (ARCHITECTURE.md §1: deterministic, no I/O).
FLOW_MODULES = ("workflows", "domain", "activities")


def workflow_runner() -> SandboxedWorkflowRunner:
    """The workflow sandbox as the worker runs it.

    The flows' own modules (`workflows.*`) are passed through: the sandbox otherwise imports a flow's
    module afresh for every run it starts (two per order: the order and its payment), and executing the
    module (its classes, their decorators and handler definitions) was most of what creating a run cost.
    They hold no module state a run could leak into another (constants only), and the runtime
    restrictions on non-deterministic calls still apply to them; the workflow tests and the replay tests
    run the flows in the SDK's default sandbox, which re-imports them and so still checks their imports.
    `domain` and `activities` were passed through already (the flows import them only so); named here
    they stay visible in the sandbox's sys.modules, where pydantic resolves a contract's forward
    references the first time it validates one.

    OpenTelemetry is let through too when tracing is on, for the same reason (it costs more imported
    afresh than the tracing itself); the interceptor only touches it deterministically (spans are made
    outside replay), as the SDK's own plugin allows."""
    restrictions = SandboxRestrictions.default.with_passthrough_modules(*FLOW_MODULES)
    if _enabled:
        restrictions = restrictions.with_passthrough_modules("opentelemetry")
    return SandboxedWorkflowRunner(restrictions=restrictions)


def instrument_http(http: httpx.AsyncClient) -> None:
    """Trace the calls this client makes to outside parties (and pass the trace on in their headers)."""
    if not _enabled:
        return
    from opentelemetry.instrumentation.httpx import HTTPXClientInstrumentor

    HTTPXClientInstrumentor.instrument_client(http)
