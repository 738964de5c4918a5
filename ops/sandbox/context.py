"""What the sandbox's routers share, kept on ``app.state`` (one sandbox app per process or test)."""

from __future__ import annotations

from dataclasses import dataclass

from fastapi import Request

from ops.sandbox.channel_refunds import ChannelBook
from ops.sandbox.notifier import Notifier
from ops.sandbox.store import Store


@dataclass
class SandboxContext:
    store: Store
    book: ChannelBook
    notifier: Notifier
    secrets: dict[str, str]


def context(request: Request) -> SandboxContext:
    ctx: SandboxContext = request.app.state.sandbox
    return ctx
