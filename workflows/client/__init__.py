"""How to talk to a flow: everything a starter (the API, the worker, the operator tools, tests) needs and
nothing it owns (ARCHITECTURE.md §1). The client connection, task queues, the terms a flow starts with,
start-and-ask and call helpers, schedules, the stuck-flow query; the flows' ids are `workflows.ids`.

Workflow code never imports this package (it holds Temporal client code, which has no place in the
sandbox); this file stays empty of imports so importing one module does not load the others."""
