"""Response models of the API, one module per resource: what the OpenAPI schema promises a caller."""
