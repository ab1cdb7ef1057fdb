"""Sets core.context for each request: the channel from the blueprint, the request id from api/logs.py."""

from __future__ import annotations

from flask import Flask, g, request

from core import context

CHANNEL_OF_BLUEPRINT = {"fhir": "fhir", "web": "web"}


def channel_for(blueprint: str | None) -> str:
    root = (blueprint or "").split(".")[0]
    return CHANNEL_OF_BLUEPRINT.get(root, "rest")


def register_request_context(app: Flask) -> None:
    """Call after register_request_logging (whose before_request makes g.request_id)."""

    @app.before_request
    def set_context():
        context.set_request(channel_for(request.blueprint), g.get("request_id"))

    @app.teardown_request
    def clear_context(exc=None):
        context.set_request(None, None)
