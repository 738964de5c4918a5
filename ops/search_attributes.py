"""Register the custom search attributes on an existing cluster (the dev server gets them as flags)."""

from __future__ import annotations

from temporalio.api.enums.v1 import IndexedValueType
from temporalio.api.operatorservice.v1 import AddSearchAttributesRequest, ListSearchAttributesRequest
from temporalio.client import Client

from workflows.search_attributes import ALL

_INDEXED = {str: IndexedValueType.INDEXED_VALUE_TYPE_KEYWORD, int: IndexedValueType.INDEXED_VALUE_TYPE_INT}


def _indexed_type(value_type: type) -> IndexedValueType.ValueType:
    return _INDEXED.get(value_type, IndexedValueType.INDEXED_VALUE_TYPE_DATETIME)


async def ensure_registered(client: Client) -> list[str]:
    """Adds the ones missing; returns their names. Safe to run at every start."""
    existing = await client.operator_service.list_search_attributes(
        ListSearchAttributesRequest(namespace=client.namespace)
    )
    known = set(existing.custom_attributes) | set(existing.system_attributes)
    missing = {key.name: _indexed_type(key.value_type) for key in ALL if key.name not in known}
    if missing:
        await client.operator_service.add_search_attributes(
            AddSearchAttributesRequest(namespace=client.namespace, search_attributes=missing)
        )
    return sorted(missing)
