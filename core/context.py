"""Who is asking, for the audit log: the channel (`rest`, `fhir`, `web`, `cli`) and the request id.

The web layer sets them before each request (api/context.py) and the command line sets `cli`;
core reads them without importing Flask.
"""

from __future__ import annotations

import uuid
from contextvars import ContextVar

CHANNELS = ("rest", "fhir", "web", "cli")

_channel: ContextVar[str | None] = ContextVar("occh_channel", default=None)
_request_id: ContextVar[str | None] = ContextVar("occh_request_id", default=None)


def set_request(channel: str | None, request_id: str | None) -> None:
    _channel.set(channel)
    _request_id.set(request_id)


def set_cli() -> str:
    """Mark this process's work as the command line's, under a request id of its own."""
    request_id = "cli-" + uuid.uuid4().hex
    set_request("cli", request_id)
    return request_id


def channel() -> str | None:
    return _channel.get()


def request_id() -> str | None:
    return _request_id.get()
