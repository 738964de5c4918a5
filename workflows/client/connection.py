"""Connecting to Temporal the same way everywhere (API, workers, ops, tests)."""

from __future__ import annotations

from temporalio.client import Client
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.service import TLSConfig

from domain.settings import Settings


async def connect(settings: Settings, address: str | None = None) -> Client:
    """Connect with the pydantic data converter; TLS / API key when a real cluster asks for them."""
    target = address or settings.temporal_address or f"127.0.0.1:{settings.embedded_temporal_port}"
    tls: TLSConfig | bool = False
    if settings.temporal_tls_cert and settings.temporal_tls_key:
        tls = TLSConfig(
            client_cert=settings.temporal_tls_cert.read_bytes(),
            client_private_key=settings.temporal_tls_key.read_bytes(),
        )
    elif settings.temporal_tls or settings.temporal_api_key:
        tls = True
    return await Client.connect(
        target,
        namespace=settings.temporal_namespace,
        api_key=settings.temporal_api_key,
        tls=tls,
        data_converter=pydantic_data_converter,
    )
