"""The event loop the worker runs on, for the worker itself and for benchmarks that measure its code."""

from __future__ import annotations

import asyncio
from collections.abc import Coroutine
from typing import Any, TypeVar

T = TypeVar("T")


def run_on_worker_loop(main: Coroutine[Any, Any, T]) -> T:
    """Run `main` on uvloop where it is installed (not on Windows): activities' database and HTTP I/O cost
    less CPU there. Otherwise on asyncio's own loop."""
    try:
        from uvloop import new_event_loop
    except ImportError:
        return asyncio.run(main)
    with asyncio.Runner(loop_factory=new_event_loop) as runner:
        return runner.run(main)
