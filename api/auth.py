"""API keys: `Authorization: Bearer KEY`. No key or a wrong key: 401; a key without the
scope: 403. The key is never logged or echoed."""

from __future__ import annotations

from functools import wraps

from flask import g, request
from flask_smorest import Blueprint, abort

from api.common import session
from core.clients import authenticate
from models import ApiClient

BEARER: list[dict[str, list[str]]] = [{"bearerAuth": []}]


def bearer_client() -> ApiClient | None:
    """The client the request's Bearer key authenticates, or None; looked up once per request
    (the rate limiter and the view both ask)."""
    if "bearer_client" not in g:
        scheme, _, key = request.headers.get("Authorization", "").partition(" ")
        g.bearer_client = authenticate(session(), key.strip()) if scheme.lower() == "bearer" and key.strip() else None
    return g.bearer_client


def current_client() -> ApiClient:
    client = bearer_client()
    if client is None:
        abort(
            401,
            message="A valid API key is required: Authorization: Bearer KEY.",
            headers={"WWW-Authenticate": "Bearer"},
        )
    assert client is not None  # abort raised (flask_smorest does not type it as NoReturn)
    return client


def require(*scopes: str):
    """Let the request through when its key has one of `scopes`; the client is `g.client`.

    This is a keyed operation's one declaration: it enforces the scope, documents the bearer
    security, and marks the view (`occh_scopes`), from which `keyed_operations` finds it: its
    per-client rate-limit budget (api.limits), its CORS policy (configured origins only,
    api.create_app) and `Cache-Control: no-store` (api.caching) follow."""

    def decorator(view):
        @wraps(view)
        def wrapper(*args, **kwargs):
            client = current_client()
            if not client.scope_set & set(scopes):
                abort(403, message=f"This key lacks the scope this needs ({' or '.join(scopes)}).")
            g.client = client
            return view(*args, **kwargs)

        documented_view = Blueprint.doc(security=BEARER)(wrapper)
        documented_view.occh_scopes = scopes
        return documented_view

    return decorator


AUTH_ERRORS = ((401, "No key, or a key that is wrong or revoked."), (403, "The key lacks the scope."))


def documented(blp, *codes: tuple[int, str]):
    """Document a keyed operation: bearer security, 401, 403 and the given error codes."""

    def decorator(view):
        for code, description in AUTH_ERRORS + codes:
            view = blp.alt_response(code, description=description)(view)
        return blp.doc(security=BEARER)(view)

    return decorator


def keyed(blp, *scopes: str, errors: tuple[tuple[int, str], ...] = ()):
    """Declare a keyed operation once, on its view: the scopes it needs (enforced: 401, 403;
    the client is `g.client`) and its OpenAPI security entry and errors. The operation is also
    found by `keyed_operations`, from which its per-client rate-limit budget, its CORS policy
    (configured origins only) and `Cache-Control: no-store` follow."""

    def decorator(view):
        return documented(blp, *errors)(require(*scopes)(view))

    return decorator


def keyed_operations(app) -> dict[tuple[str, str], tuple[str, ...]]:
    """(endpoint, HTTP method) -> scopes of every operation declared with `keyed`."""
    found: dict[tuple[str, str], tuple[str, ...]] = {}
    for endpoint, function in app.view_functions.items():
        view_class = getattr(function, "view_class", None)
        candidates = (
            [(method, getattr(view_class, method.lower(), None)) for method in (view_class.methods or ())]
            if view_class is not None
            else [(method, function) for method in ("GET", "POST", "PUT", "PATCH", "DELETE")]
        )
        for method, view in candidates:
            scopes = getattr(view, "occh_scopes", None)
            if scopes:
                found[(endpoint, method)] = scopes
    return found


def keyed_path(app, path: str) -> bool:
    """Whether a path that matched no route (a 404 or 405) lies under a keyed route."""
    return any(pattern.match(path) for pattern in app.extensions.get("occh_keyed_paths", ()))


def keyed_rules(app) -> list[str]:
    """The URL rules whose every operation is keyed, as regular expressions (for CORS, which
    goes by path: a path that also has a public read keeps the public policy)."""
    import re

    operations = keyed_operations(app)
    rules = set()
    for rule in app.url_map.iter_rules():
        methods = set(rule.methods or ()) - {"HEAD", "OPTIONS"}
        if methods and all((rule.endpoint, method) in operations for method in methods):
            pattern = re.sub(r"<[^>]+>", "[^/]+", rule.rule)
            rules.add("^" + pattern + "$")
    return sorted(rules)
