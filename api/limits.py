"""Limits and headers: what the API refuses before a view runs, and what every answer carries.

- Request limits: a body over `MAX_BODY_BYTES` is a 413, a POST/PUT/PATCH body that is not
  JSON (`application/json` or `application/*+json`) a 415, a query string over
  `MAX_QUERY_BYTES` a 414. All in the JSON error envelope, before anything is read or written.
- Security headers on every response, errors and /docs included; HSTS only over TLS.
- Rate limits (Flask-Limiter): referral and webhook routes and every write are counted per API
  client (the client's id, never the key), public reads per client address (hashed). Redis
  when `REDIS_URL` is set, memory otherwise; if Redis fails, the limiter falls back to memory
  and never fails a request.
- An apispec plugin documents 414, 500, 503 and 429 on every operation (not 429 on the health
  probes, which are not limited; not 503 on /healthz, which touches no database), 413 and 415
  400 (malformed JSON) on every operation with a body, and the error body of every error status.
"""

from __future__ import annotations

import base64
import hashlib
import re
import time
from collections.abc import Callable
from functools import partial

from apispec import BasePlugin
from flask import Flask, Response, current_app, g, request
from flask_limiter import ApplicationLimit, Limiter, RequestLimit
from flask_smorest import abort
from werkzeug.middleware.proxy_fix import ProxyFix

from api.extensions import db

WRITE_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})
BODY_METHODS = frozenset({"POST", "PUT", "PATCH"})
FORM_BLUEPRINTS = frozenset({"web"})  # HTML forms post application/x-www-form-urlencoded
PROBES = frozenset({"/healthz", "/readyz"})
JSON_TYPE = re.compile(r"^application/(?:[a-z0-9.+-]+\+)?json$")
INLINE_SCRIPT = re.compile(r"<script>(.*?)</script>", re.S)

API_CSP = "default-src 'none'; frame-ancestors 'none'; base-uri 'none'; form-action 'none'"
# Swagger UI: its scripts and styles from /docs/assets/, the one inline script of the page by
# its hash, inline styles (React sets style attributes), data: images from its CSS, and
# fetches of /openapi.json and of "Try it out" to this origin only.
DOCS_CSP = (
    "default-src 'none'; script-src 'self' {script_hashes}; style-src 'self' 'unsafe-inline'; "
    "img-src 'self' data:; connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'none'"
)
HSTS = "max-age=31536000"


# Request limits ---------------------------------------------------------------------------


def check_request_limits() -> None:
    """Refuse an oversized, non-JSON or over-long request before any view reads it."""
    limit = current_app.config["MAX_QUERY_BYTES"]
    if len(request.query_string) > limit:
        abort(414, message=f"The query string is longer than {limit} bytes.")
    limit = current_app.config["MAX_BODY_BYTES"]
    length = request.content_length
    if length is not None and length > limit:
        abort(413, message=f"The request body is larger than {limit} bytes.")
    if length is None and "chunked" in request.headers.get("Transfer-Encoding", "").lower():
        # A streamed body of unknown length: werkzeug reads at most MAX_CONTENT_LENGTH
        # (one byte over the limit) and stops there without an error, so measure it here.
        data = request.get_data(cache=True)
        if len(data) > limit:
            abort(413, message=f"The request body is larger than {limit} bytes.")
        has_body = bool(data)
    else:
        has_body = bool(length)
    if (
        request.method in BODY_METHODS
        and has_body
        and request.routing_exception is None
        and request.blueprint not in FORM_BLUEPRINTS
    ):
        if not JSON_TYPE.fullmatch(request.mimetype or ""):
            abort(415, message="Send the body as JSON, with Content-Type: application/json.")


# Security headers -------------------------------------------------------------------------


def docs_csp(response: Response) -> str:
    """The CSP of the Swagger UI page, with the hash of each of its inline scripts."""
    html = response.get_data(as_text=True)
    hashes = [
        "'sha256-" + base64.b64encode(hashlib.sha256(script.encode()).digest()).decode() + "'"
        for script in INLINE_SCRIPT.findall(html)
    ]
    return DOCS_CSP.format(script_hashes=" ".join(hashes))


def add_security_headers(response: Response) -> Response:
    response.headers["X-Content-Type-Options"] = "nosniff"
    response.headers["X-Frame-Options"] = "DENY"
    response.headers["Referrer-Policy"] = "no-referrer"
    if request.endpoint == "api-docs.openapi_swagger_ui" and response.status_code == 200:
        response.headers["Content-Security-Policy"] = docs_csp(response)
    else:
        # The web app's pages (web/) set a CSP of their own in g.occh_csp.
        response.headers["Content-Security-Policy"] = g.get("occh_csp") or API_CSP
    if request.is_secure:
        response.headers["Strict-Transport-Security"] = HSTS
    return response


def hide_dev_server_banner() -> None:
    """The development server says `Server: Werkzeug/x Python/y`; say only `occh`.
    (gunicorn sends `Server: gunicorn`, with no version.)"""
    from werkzeug.serving import WSGIRequestHandler

    # A deliberate patch of the development server's class (mypy refuses assigning to a method).
    WSGIRequestHandler.version_string = lambda self: "occh"  # type: ignore[method-assign]


# Rate limits ------------------------------------------------------------------------------


def _digest(value: str) -> str:
    return hashlib.sha256(value.encode()).hexdigest()[:24]


def address_key() -> str:
    """The client address (behind PROXY_HOPS trusted proxies), hashed: no address in storage
    or logs."""
    return "addr:" + _digest(request.remote_addr or "unknown")


def client_key() -> str:
    """The API client of the Bearer key, by id; a request whose key authenticates no client is
    counted by its address. The key itself is never used."""
    from api.auth import bearer_client

    try:
        client = bearer_client()
    except Exception:  # the database is down: the view answers 503; count by address
        db.session.rollback()
        client = None
    if client is not None:
        return f"client:{client.id}"
    return address_key()


def is_probe() -> bool:
    return request.path in PROBES


def is_keyed() -> bool:
    """Keyed routes (referrals, webhooks, FHIR ServiceRequest/Task, directory writes: every view
    declared with api.auth.require) and every write are counted per API client."""
    if request.method == "OPTIONS":
        return False
    if request.method in WRITE_METHODS:
        return True
    if request.endpoint is None:  # no route matched: keyed when the path is a keyed route's
        from api.auth import keyed_path

        return keyed_path(current_app, request.path)
    # Declared on the view, with api.auth.require (or api.auth.keyed).
    return (request.endpoint, request.method) in current_app.extensions.get("occh_keyed", ())


def retry_after(limit: RequestLimit) -> int:
    try:
        return max(1, int(limit.reset_at - time.time()))
    except Exception:  # storage gone between the hit and this read: a whole window
        return limit.limit.get_expiry()


def on_breach(limit: RequestLimit) -> Response:
    """Only the Retry-After header: api/errors.py writes the JSON envelope of the 429."""
    response = Response(status=429)
    response.headers["Retry-After"] = str(retry_after(limit))
    return response


def rate_limits() -> list[ApplicationLimit]:
    """One budget per address for public reads and one per API client for keyed routes and
    writes, each shared by all routes of its kind."""
    return [
        ApplicationLimit(
            lambda: current_app.config["RATELIMIT_PUBLIC"],
            key_function=address_key,
            scope="public",
            exempt_when=lambda: is_probe() or is_keyed(),
            error_message=lambda: (
                f"Too many requests from this address (limit {current_app.config['RATELIMIT_PUBLIC']})."
            ),
        ),
        ApplicationLimit(
            lambda: current_app.config["RATELIMIT_KEYED"],
            key_function=client_key,
            scope="keyed",
            exempt_when=lambda: is_probe() or not is_keyed(),
            error_message=lambda: (
                f"Too many requests for this API key (limit {current_app.config['RATELIMIT_KEYED']})."
            ),
        ),
    ]


def init_rate_limits(app: Flask) -> Limiter | None:
    """A limiter of this app's own (tests build several apps with different settings)."""
    config = app.config
    if not config["RATELIMIT_ENABLED"]:
        return None
    config["RATELIMIT_STORAGE_URI"] = config["REDIS_URL"] or "memory://"
    # A Redis that is down or slow costs at most a second, then the limiter counts in memory
    # (per process) until Redis answers again; any other storage error is logged, not raised.
    config.setdefault(
        "RATELIMIT_STORAGE_OPTIONS", {"socket_connect_timeout": 1, "socket_timeout": 1} if config["REDIS_URL"] else {}
    )
    config["RATELIMIT_SWALLOW_ERRORS"] = True
    config["RATELIMIT_HEADERS_ENABLED"] = False  # Retry-After on 429s only, set by on_breach
    budgets: list[str | Callable[[], str] | ApplicationLimit] = [*rate_limits()]
    limiter = Limiter(
        address_key,
        application_limits=budgets,
        # Flask-Limiter 4.1 annotates this list[str], but Limiter.__init__ keeps each Limit it is
        # given as it is (isinstance(limit, Limit)): the fallback is the same two budgets.
        in_memory_fallback=rate_limits(),  # type: ignore[arg-type]
        in_memory_fallback_enabled=True,
        on_breach=on_breach,
        key_prefix=config["RATELIMIT_KEY_PREFIX"],
    )
    limiter.init_app(app)
    return limiter


# Wiring -----------------------------------------------------------------------------------


def init_limits_and_headers(app: Flask) -> None:
    """Call last in create_app, so that request ids are set before any refusal."""
    config = app.config
    config["MAX_CONTENT_LENGTH"] = config["MAX_BODY_BYTES"] + 1  # see check_request_limits
    if config["PROXY_HOPS"]:
        hops = config["PROXY_HOPS"]
        # Flask's documented way to put a WSGI middleware in front of the app.
        app.wsgi_app = ProxyFix(app.wsgi_app, x_for=hops, x_proto=hops, x_host=hops, x_port=hops)  # type: ignore[method-assign]
    init_rate_limits(app)  # counted first: refused requests use the budget too
    app.before_request(check_request_limits)
    app.after_request(add_security_headers)
    hide_dev_server_banner()


FHIR_PREFIX = "/fhir"
RETRY_AFTER = {"Retry-After": {"description": "Seconds to wait before retrying.", "schema": {"type": "integer"}}}


def _add_response(responses: dict, code: int, doc: dict) -> None:
    """Document `code` in an operation's `responses`, unless it documents it already."""
    if code not in responses and str(code) not in responses:
        responses[str(code)] = doc


class LimitsDocPlugin(BasePlugin):
    """Documents the refusals of this module, and the failures any operation can answer, on
    every operation of the OpenAPI document; and gives every error answer its body: the JSON
    error envelope (`Error`), or an OperationOutcome in application/fhir+json under /fhir.
    There is no catch-all `default` response: each operation lists every status it returns."""

    def init_spec(self, spec):
        super().init_spec(spec)
        self.spec = spec

    def error_content(self, path: str) -> dict:
        from schemas.errors import ErrorSchema
        from schemas.fhir import FhirOperationOutcomeSchema

        schemas = self.spec.components.schemas
        if path == FHIR_PREFIX or path.startswith(FHIR_PREFIX + "/"):
            if "FhirOperationOutcome" not in schemas:
                self.spec.components.schema("FhirOperationOutcome", schema=FhirOperationOutcomeSchema)
            return {"application/fhir+json": {"schema": {"$ref": "#/components/schemas/FhirOperationOutcome"}}}
        if "Error" not in schemas:
            self.spec.components.schema("Error", schema=ErrorSchema)
        return {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}

    def operation_helper(self, path=None, operations=None, **kwargs):
        for operation in (operations or {}).values():
            if not isinstance(operation, dict):
                continue
            responses = operation.setdefault("responses", {})
            add = partial(_add_response, responses)

            add(414, {"description": "The query string is longer than MAX_QUERY_BYTES."})
            if path not in PROBES:
                add(
                    429,
                    {
                        "description": "Too many requests from this address (public reads) or for this API key "
                        "(referrals, webhooks, writes).",
                        "headers": {
                            "Retry-After": {
                                "description": "Seconds until the budget refills.",
                                "schema": {"type": "integer"},
                            }
                        },
                    },
                )
            if "requestBody" in operation:
                add(400, {"description": "The body is not well-formed JSON."})
                add(413, {"description": "The body is larger than MAX_BODY_BYTES."})
                add(415, {"description": "The body is not JSON (Content-Type application/json or application/*+json)."})
            add(500, {"description": "An unexpected error: a bug, logged with the request id; nothing was changed."})
            if path != "/healthz":
                add(
                    503,
                    {
                        "description": "The database is unavailable; retry after Retry-After seconds.",
                        "headers": RETRY_AFTER,
                    },
                )
            for code, response in responses.items():
                if str(code)[0] in "45" and isinstance(response, dict) and "$ref" not in response:
                    response.setdefault("content", self.error_content(path or ""))
