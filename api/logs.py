"""Structured JSON request logs: request id, method, path, status, duration.

The path is logged without its query string (a search may hold a child's circumstances) and
no body, header value or key is ever logged. `X-Request-ID` is taken from the request when it
is a plain token, else generated, and returned on the response.
"""

from __future__ import annotations

import json
import logging
import re
import time
import uuid

from flask import Flask, g, request

log = logging.getLogger("occh.requests")
REQUEST_ID = re.compile(r"^[A-Za-z0-9._-]{1,64}$")


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        entry = {
            "time": self.formatTime(record, "%Y-%m-%dT%H:%M:%S%z"),
            "level": record.levelname,
            "logger": record.name,
        }
        entry.update(getattr(record, "fields", {}) or {"message": record.getMessage()})
        if record.exc_info and record.exc_info[0] is not None:  # (None, None, None) outside an exception
            entry["error_type"] = record.exc_info[0].__name__
        return json.dumps(entry)


def configure_logging(level: str) -> None:
    root = logging.getLogger()
    if not any(isinstance(h.formatter, JsonFormatter) for h in root.handlers):
        handler = logging.StreamHandler()
        handler.setFormatter(JsonFormatter())
        root.addHandler(handler)
    root.setLevel(level)
    # The development server's access log prints whole URLs, query strings included.
    logging.getLogger("werkzeug").setLevel(logging.WARNING)


def register_request_logging(app: Flask) -> None:
    @app.before_request
    def start():
        incoming = request.headers.get("X-Request-ID", "")
        g.request_id = incoming if REQUEST_ID.fullmatch(incoming) else uuid.uuid4().hex
        g.started = time.perf_counter()

    @app.after_request
    def finish(response):
        response.headers["X-Request-ID"] = g.get("request_id", "")
        rule = request.url_rule.rule if request.url_rule else "(unmatched)"
        log.info(
            "request",
            extra={
                "fields": {
                    "request_id": g.get("request_id"),
                    "method": request.method,
                    "route": rule,
                    "path": request.path,
                    "status": response.status_code,
                    "duration_ms": round((time.perf_counter() - g.get("started", time.perf_counter())) * 1000, 1),
                }
            },
        )
        return response
