"""What GET /v1/callbacks/refused answers."""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, Field


class RefusedNotification(BaseModel):
    party: str
    event_id: str
    event_type: str
    subject_ref: str
    reason: str
    received_at: datetime


class CallbackAck(BaseModel):
    status: str = Field(description="accepted (the flow was told), stored (no flow waits for it) or duplicate")
    event_id: str
