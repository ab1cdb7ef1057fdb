"""What the API refuses about a request before any view or cache sees it.

- `Host`: a host not in `TRUSTED_HOSTS` (default `localhost`, `127.0.0.1`, `[::1]`, any port;
  a name starting with a dot also matches its subdomains; `*` any host) is a 400, before
  routing, rate limits and the result cache. Links the API writes (`profile`, FHIR `fullUrl`
  and paging links) name the request's host, so an untrusted one is never reflected.
- Text in the path and the query string: a NUL character or a lone surrogate in the path is
  a 404 (no resource has such a name), in the query string a 422 (a 400 under /fhir, as every
  bad FHIR search parameter) (schemas/text.py; the same rule applies to every body, FHIR
  resource and import, with a 422).
- JSON bodies are read by one strict reader (`strict_loads`, also the app's JSON provider):
  nesting deeper than `MAX_JSON_DEPTH`, a number literal longer than `MAX_NUMBER_CHARS`
  characters, a non-finite number, or a key given twice in one object is a 400
  `invalid_json`, as is text that is not JSON.
- `Vary: Origin` on the private (referral) routes when `CORS_ORIGINS` is set: the answer
  depends on the origin, so no shared cache may serve one origin's answer to another.
"""

from __future__ import annotations

import json
import math
import re

from flask import Flask, current_app, request
from flask.json.provider import DefaultJSONProvider
from flask_smorest import abort
from werkzeug.exceptions import BadRequest

from schemas.text import text_problem

MAX_JSON_DEPTH = 64
MAX_NUMBER_CHARS = 100
DEFAULT_TRUSTED_HOSTS = "localhost,127.0.0.1,[::1]"
HOST = re.compile(r"(?P<name>[a-z0-9._-]+|\[[a-f0-9:.]+\])(?::(?P<port>[0-9]{1,5}))?", re.ASCII | re.IGNORECASE)
PRIVATE_PATHS = re.compile(r"^/(?:referrals|webhooks)(?:/|$)|^/fhir/(?:ServiceRequest|Task)\b|^/fhir/?$")
_STRINGS = re.compile(r'"(?:[^"\\]|\\.)*"', re.S)
_BRACKETS = re.compile(r"[\[\]{}]")
BODY_METHODS = frozenset({"POST", "PUT", "PATCH"})


# --------------------------------------------------------------------------- the JSON reader


class InvalidJson(ValueError):
    """Text the strict reader refuses; the message says why, never what the text held."""


class InvalidJsonBody(BadRequest):
    """A 400 named `invalid_json` in the error envelope."""

    error_name = "invalid_json"


def _no_duplicates(pairs: list[tuple[str, object]]) -> dict:
    result: dict = {}
    for key, value in pairs:
        if key in result:
            raise InvalidJson("A key appears twice in one object.")
        result[key] = value
    return result


def _int(literal: str) -> int:
    if len(literal) > MAX_NUMBER_CHARS:
        raise InvalidJson(f"A number is longer than {MAX_NUMBER_CHARS} characters.")
    return int(literal)


def _float(literal: str) -> float:
    if len(literal) > MAX_NUMBER_CHARS:
        raise InvalidJson(f"A number is longer than {MAX_NUMBER_CHARS} characters.")
    value = float(literal)
    if not math.isfinite(value):
        raise InvalidJson("A number is too large.")
    return value


def _constant(name: str):
    raise InvalidJson(f"{name} is not JSON.")


def json_depth(text: str) -> int:
    """How deep arrays and objects nest (brackets inside strings do not count)."""
    depth = deepest = 0
    for bracket in _BRACKETS.findall(_STRINGS.sub('""', text)):
        if bracket in "[{":
            depth += 1
            deepest = max(deepest, depth)
        else:
            depth -= 1
    return deepest


def strict_loads(data: str | bytes | bytearray):
    """JSON text to a value, or InvalidJson."""
    if isinstance(data, (bytes, bytearray)):
        try:
            data = bytes(data).decode("utf-8-sig")
        except UnicodeDecodeError:
            raise InvalidJson("The body is not UTF-8 text.") from None
    if json_depth(data) > MAX_JSON_DEPTH:
        raise InvalidJson(f"Arrays and objects nest deeper than {MAX_JSON_DEPTH} levels.")
    try:
        return json.loads(
            data, object_pairs_hook=_no_duplicates, parse_int=_int, parse_float=_float, parse_constant=_constant
        )
    except InvalidJson:
        raise
    except RecursionError:
        raise InvalidJson(f"Arrays and objects nest deeper than {MAX_JSON_DEPTH} levels.") from None
    except ValueError as exc:  # JSONDecodeError and int()'s own digit limit
        position = f" (at character {exc.pos})" if isinstance(exc, json.JSONDecodeError) else ""
        raise InvalidJson(f"The body is not valid JSON{position}.") from None


class StrictJSONProvider(DefaultJSONProvider):
    """Flask's JSON provider, reading with strict_loads (request.get_json uses it) and writing
    members in the order the schemas give them, not sorted."""

    sort_keys = False

    def loads(self, s, **kwargs):
        return strict_loads(s)


def check_json_body() -> None:
    """Read every JSON body once with the strict reader; refuse it with a 400 `invalid_json`."""
    if request.method not in BODY_METHODS or not (request.mimetype or "").endswith("json"):
        return
    data = request.get_data(cache=True)
    if not data:
        return
    try:
        strict_loads(data)
    except InvalidJson as exc:
        raise InvalidJsonBody(description=f"The body is not acceptable JSON: {exc}") from None


# --------------------------------------------------------------------------- host and text


def host_allowed(host: str, trusted: list[str]) -> bool:
    match = HOST.fullmatch(host or "")
    if match is None or (match.group("port") and not 0 < int(match.group("port")) < 65536):
        return False
    name = match.group("name").lower().rstrip(".")
    for entry in trusted:
        entry = entry.strip().lower().rstrip(".")
        if entry == "*" or entry == name or (entry.startswith(".") and (name.endswith(entry) or name == entry[1:])):
            return True
    return False


def check_host() -> None:
    if not host_allowed(request.host, current_app.config["TRUSTED_HOST_NAMES"]):
        abort(400, message="The Host header names a host this server does not answer for (see TRUSTED_HOSTS).")


def check_text_of_url() -> None:
    """NUL or a lone surrogate in the path or the query string: a 422 naming where."""
    problem = text_problem(request.path)
    if problem:  # no resource has such a name: a 404, as for any other unknown path
        abort(404, message="No resource has this path.", errors={"path": [problem]})
    # FHIR answers every bad search parameter with a 400 (OperationOutcome); the rest a 422.
    status = 400 if request.path == "/fhir" or request.path.startswith("/fhir/") else 422
    for name, value in request.args.items(multi=True):
        problem = text_problem(name) or text_problem(value)
        if problem:
            where = name if not text_problem(name) else "(name)"
            abort(status, message="A query parameter is invalid.", errors={"query": {where: [problem]}})


def vary_on_origin(response):
    if current_app.config["CORS_ORIGINS"] and PRIVATE_PATHS.search(request.path):
        response.vary.add("Origin")
    return response


# --------------------------------------------------------------------------- wiring


def init_request_guards(app: Flask) -> None:
    """Call right after register_request_logging: before rate limits and caches."""
    app.before_request(check_host)
    app.before_request(check_text_of_url)
    app.after_request(vary_on_origin)


def init_body_guard(app: Flask) -> None:
    """Call after init_limits_and_headers: an oversized or non-JSON body is refused there first."""
    app.json = StrictJSONProvider(app)
    app.before_request(check_json_body)
