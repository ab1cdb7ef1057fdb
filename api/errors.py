"""One JSON error envelope for every error the API returns.

`{"code": 404, "status": "Not Found", "error": "not_found", "message": "...", "errors": {...}}`:
`code` is the HTTP status, `error` a stable machine-readable name, `errors` the fields at
fault for a 422. Messages never echo request values back.
"""

from __future__ import annotations

import logging
import traceback

from flask import Flask, g, has_request_context, jsonify
from sqlalchemy.exc import IntegrityError, OperationalError
from werkzeug.exceptions import HTTPException

from core.errors import (
    Conflict,
    DomainError,
    Forbidden,
    InvalidData,
    NotFound,
    PreconditionFailed,
    PreconditionRequired,
)

log = logging.getLogger("occh.errors")

ERROR_NAMES = {
    400: "bad_request",
    401: "unauthorized",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    406: "not_acceptable",
    409: "conflict",
    412: "precondition_failed",
    413: "payload_too_large",
    414: "uri_too_long",
    415: "unsupported_media_type",
    422: "validation_error",
    428: "precondition_required",
    429: "too_many_requests",
    500: "internal_error",
    503: "service_unavailable",
}

STATUS_OF = {
    NotFound: 404,
    Conflict: 409,
    InvalidData: 422,
    Forbidden: 403,
    PreconditionFailed: 412,
    PreconditionRequired: 428,
}


def error_body(status: int, message: str, errors: dict | None = None, name: str | None = None) -> dict:
    from http import HTTPStatus

    body = {
        "code": status,
        "status": HTTPStatus(status).phrase,
        "error": name or ERROR_NAMES.get(status, "error"),
        "message": message,
    }
    if errors:
        body["errors"] = errors
    return body


def _json_error(status: int, message: str, errors: dict | None = None, headers=None, name: str | None = None):
    response = jsonify(error_body(status, message, errors, name))
    response.status_code = status
    if headers:
        for key, value in headers:
            if key.lower() not in ("content-type", "content-length"):
                response.headers[key] = value
    return response


def database_unavailable(exc: OperationalError) -> bool:
    """A lost or refused connection, or a locked SQLite file: worth a retry (503), unlike
    a mistake in a query (500)."""
    if exc.connection_invalidated:
        return True
    message = str(exc.orig).lower()
    return any(
        phrase in message
        for phrase in (
            "database is locked",
            "connection",
            "server closed",
            "terminating",
            "could not connect",
            "unable to open",
        )
    )


def register_error_handlers(app: Flask) -> None:
    @app.errorhandler(HTTPException)
    def handle_http(exc: HTTPException):
        status = exc.code or 500
        data = getattr(exc, "data", None) or {}
        errors = data.get("messages") or data.get("errors")
        message = data.get("message") or exc.description or ""
        if status == 422 and not data.get("message"):
            message = "The request has invalid fields; see errors."
        headers = list(exc.get_response().headers.items()) if status in (405, 429) else []
        headers += list((data.get("headers") or {}).items())
        return _json_error(status, message, errors, headers, getattr(exc, "error_name", None))

    @app.errorhandler(DomainError)
    def handle_domain(exc: DomainError):
        status = next((code for kind, code in STATUS_OF.items() if isinstance(exc, kind)), 400)
        return _json_error(status, exc.message, exc.errors or None)

    @app.errorhandler(IntegrityError)
    def handle_integrity(exc: IntegrityError):
        log.warning("integrity error", extra={"error_type": type(exc.orig).__name__})
        return _json_error(409, "The change conflicts with existing data.")

    @app.errorhandler(OperationalError)
    def handle_operational(exc: OperationalError):
        if not database_unavailable(exc):
            return handle_unexpected(exc)
        log.error("database unavailable: %s", type(exc.orig).__name__)
        return _json_error(503, "The database is unavailable; try again shortly.", headers=[("Retry-After", "5")])

    @app.errorhandler(Exception)
    def handle_unexpected(exc: Exception):
        # The stack only: an exception's message may carry request values.
        # With the request id the client got, so that a report of the failure can be found.
        request_id = g.get("request_id") if has_request_context() else None
        log.error(
            "unhandled",
            extra={
                "fields": {
                    "message": f"unhandled {type(exc).__name__}",
                    "request_id": request_id,
                    "error_type": type(exc).__name__,
                    "stack": "".join(traceback.format_tb(exc.__traceback__)),
                }
            },
        )
        return _json_error(500, "An unexpected error occurred.")
