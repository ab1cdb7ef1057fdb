"""HTTP caching of public reads, and the server-side result cache.

Every public GET (the directory, search, FHIR directory reads, `/`, the OpenAPI document) gets:

- a strong `ETag`: a digest of the directory's data version (core/directory_version.py), the
  code release, and the request's origin, path and query. It is known before the view runs,
  so a matching `If-None-Match` is answered `304 Not Modified` after one primary-key read
  (on a connection each thread keeps for it: core.directory_version.VersionReader), without
  running the query;
- `Cache-Control: public, max-age=CACHE_MAX_AGE` (`public, no-cache` when it is 0, the
  default: caches revalidate every time and so never show data older than the last write);
- `Last-Modified`: when the directory last changed (`If-Modified-Since` is honoured when no
  `If-None-Match` is sent).

A 200 is also kept in the result cache under the same digest: in this process (an LRU of
`RESULT_CACHE_SIZE` answers and `RESULT_CACHE_MEMORY_BYTES` of bodies) or, when `CACHE_REDIS_URL`
is set, in that Redis (shared by every instance, each answer with a TTL of `RESULT_CACHE_TTL`
seconds). Never in the rate limits' Redis (`REDIS_URL`): a flood of distinct URLs fills the cache,
and a cache Redis at its `maxmemory` evicts (or refuses) keys; that must never be a rate-limit
counter. Give the cache Redis a `maxmemory` and `maxmemory-policy allkeys-lru` (see
docs/operations.md). A later request for the same URL at the same data version is answered
from it. A write changes the version, so every cached answer misses from then on.

Referral data (referrals, webhooks, FHIR ServiceRequest/Task, any request with an API key
route) is never cached: those routes keep `Cache-Control: no-store` and their own ETags.
"""

from __future__ import annotations

import hashlib
import json
import logging
import threading
import time
from collections import OrderedDict
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import cast
from urllib.parse import urlencode

from apispec import BasePlugin
from flask import Flask, Response, current_app, g, request
from werkzeug.http import http_date

from api.common import LANGUAGES
from api.extensions import db
from api.limits import PROBES, is_keyed, is_probe
from core import directory_version

log = logging.getLogger("occh.caching")

ROOT = Path(__file__).resolve().parent.parent
# The code that shapes a response: a new release changes every ETag, even on the same data.
RELEASE_SOURCES = ("api", "core", "schemas", "models", "migrations/versions", "web")
# Static files that carry their own caching headers.
STATIC_BLUEPRINTS = frozenset({"docs_assets"})
# Headers never stored with a cached answer: set per response by the hooks that run after this one.
UNSTORED_HEADERS = frozenset({"content-length", "date", "x-request-id", "etag", "cache-control", "last-modified"})


def release_fingerprint(extra: str = "") -> str:
    """A digest of the source files that shape responses (the same for every instance of a release)."""
    digest = hashlib.sha256(extra.encode())
    for folder in RELEASE_SOURCES:
        for path in sorted((ROOT / folder).rglob("*.py")):
            digest.update(str(path.relative_to(ROOT)).encode())
            digest.update(path.read_bytes())
    return digest.hexdigest()[:16]


# --------------------------------------------------------------------------- result caches


@dataclass
class CachedAnswer:
    headers: list[tuple[str, str]]
    body: bytes

    def encode(self) -> bytes:
        return json.dumps(self.headers).encode() + b"\n" + self.body

    @classmethod
    def decode(cls, data: bytes) -> CachedAnswer:
        head, _, body = data.partition(b"\n")
        return cls([tuple(pair) for pair in json.loads(head)], body)


class MemoryResultCache:
    """An LRU in this process, of at most `size` answers and `max_bytes` of bodies. Answers of
    an older data version are dropped when a newer one is stored (they could never be asked
    for again)."""

    def __init__(self, size: int, max_bytes: int) -> None:
        self.size = size
        self.max_bytes = max_bytes
        self.bytes = 0
        self.entries: OrderedDict[str, CachedAnswer] = OrderedDict()
        self.version = ""
        self.lock = threading.Lock()

    def get(self, key: str) -> CachedAnswer | None:
        with self.lock:
            answer = self.entries.get(key)
            if answer is not None:
                self.entries.move_to_end(key)
            return answer

    def put(self, key: str, version: str, answer: CachedAnswer) -> None:
        with self.lock:
            if version != self.version:
                self.entries.clear()
                self.bytes = 0
                self.version = version
            previous = self.entries.pop(key, None)
            if previous is not None:
                self.bytes -= len(previous.body)
            self.entries[key] = answer
            self.bytes += len(answer.body)
            while len(self.entries) > self.size or self.bytes > self.max_bytes:
                _, dropped = self.entries.popitem(last=False)
                self.bytes -= len(dropped.body)


class RedisResultCache:
    """Answers in Redis, shared by every instance, each kept `ttl` seconds. When Redis fails the
    request is answered without the cache, and Redis is left alone for `RETRY_AFTER` seconds."""

    RETRY_AFTER = 30.0

    def __init__(self, url: str, prefix: str, ttl: int) -> None:
        import redis

        self.redis = redis.Redis.from_url(url, socket_connect_timeout=1, socket_timeout=1)
        self.error = redis.RedisError
        self.prefix = f"{prefix}:answer:"
        self.ttl = ttl
        self.down_until = 0.0

    def _available(self) -> bool:
        return time.monotonic() >= self.down_until

    def _failed(self, exc: Exception) -> None:
        log.warning("result cache: Redis unavailable (%s); answering without it", type(exc).__name__)
        self.down_until = time.monotonic() + self.RETRY_AFTER

    def get(self, key: str) -> CachedAnswer | None:
        if not self._available():
            return None
        try:
            # Bytes: the client is made without decode_responses (redis-py types it bytes | str).
            data = cast(bytes | None, self.redis.get(self.prefix + key))
        except self.error as exc:
            self._failed(exc)
            return None
        return CachedAnswer.decode(data) if data else None

    def put(self, key: str, version: str, answer: CachedAnswer) -> None:
        if not self._available():
            return
        try:
            self.redis.set(self.prefix + key, answer.encode(), ex=self.ttl)
        except self.error as exc:
            self._failed(exc)


def result_cache_for(config) -> MemoryResultCache | RedisResultCache | None:
    if config["RESULT_CACHE_SIZE"] <= 0:
        return None
    if config["CACHE_REDIS_URL"]:
        return RedisResultCache(config["CACHE_REDIS_URL"], config["CACHE_KEY_PREFIX"], config["RESULT_CACHE_TTL"])
    return MemoryResultCache(config["RESULT_CACHE_SIZE"], config["RESULT_CACHE_MEMORY_BYTES"])


# --------------------------------------------------------------------------- the hooks


@dataclass
class Cacheable:
    """What the request's caching hooks know: the answer's ETag, the data version, a cache hit."""

    digest: str
    version: directory_version.Version
    hit: bool = False

    @property
    def etag(self) -> str:
        return self.digest[:40]


def is_public_read() -> bool:
    return (
        request.method in ("GET", "HEAD")
        and request.endpoint is not None
        and request.endpoint != "static"
        and request.blueprint not in STATIC_BLUEPRINTS
        and not is_probe()
        and not is_keyed()
        # Signed-in pages of the web app (web/) are marked private: never cached.
        and not getattr(current_app.view_functions.get(request.endpoint), "occh_private", False)
    )


def request_digest(version: directory_version.Version) -> str:
    """What the body of a public read depends on: data version, release, origin, path, query."""
    query = urlencode(list(request.args.items(multi=True)))
    origin = f"{request.scheme}://{request.host}{request.root_path}"
    # The day too: a capacity status goes stale (is served as unknown) with time, not with a write.
    today = datetime.now(UTC).date().isoformat()
    # The language asked for by Accept-Language changes the body (translations, advisories).
    language = request.accept_languages.best_match(LANGUAGES) or ""
    basis = "\n".join(
        (version.tag, current_app.extensions["occh_release"], origin, request.path, query, today, language)
    )
    # What else a body depends on (the web app's pages: their language).
    basis += "".join("\n" + variant() for variant in current_app.extensions.get("occh_cache_variants", ()))
    return hashlib.sha256(basis.encode()).hexdigest()


def etag_matches(state: Cacheable) -> bool:
    """Whether `If-None-Match` holds this URL's current ETag: answered before the view, since
    only a URL that answered 200 has one. `*` goes to the view (it matches only a resource
    that exists, which the view knows)."""
    match = request.if_none_match
    return bool(match) and not match.star_tag and match.contains_weak(state.etag)


def unmodified_since(state: Cacheable) -> bool:
    """Whether `If-Modified-Since` (with no `If-None-Match`, which wins) is at or after the last
    write. Answered after the view, as one date serves every URL: a 404 or 422 stays one.
    HTTP dates are whole seconds, so the change time is compared in whole seconds;
    `last_modified` keeps that exact (see there)."""
    since = request.if_modified_since
    return not request.if_none_match and since is not None and state.version.changed_at.replace(microsecond=0) <= since


def last_modified(version: directory_version.Version) -> str | None:
    """`Last-Modified` for a version, sent only once its second is over: a write later in the
    same second would otherwise share the date, and a client holding it would get a 304."""
    if version.changed_at > datetime.now(UTC) - timedelta(seconds=1):
        return None
    return http_date(version.changed_at)


def not_modified_response() -> Response:
    response = current_app.response_class(status=304)
    response.headers.pop("Content-Type", None)
    return response


def answer_from_caches() -> Response | None:
    """Before the view: 304 for a matching validator, or the cached 200."""
    if not is_public_read():
        return None
    version = current_app.extensions["occh_version_reader"].read()
    state = g.occh_cacheable = Cacheable(request_digest(version), version)
    if etag_matches(state):
        return not_modified_response()
    cache = current_app.extensions["occh_result_cache"]
    answer = cache.get(state.digest) if cache is not None else None
    if answer is None:
        return None
    state.hit = True
    response = current_app.response_class(answer.body, status=200)
    response.headers.clear()
    for key, value in answer.headers:
        response.headers.add(key, value)
    return response


def add_cache_headers(response: Response) -> Response:
    """After the view: the validators and Cache-Control of a public read; keep a fresh 200."""
    state: Cacheable | None = g.get("occh_cacheable")
    if state is None:
        if request.endpoint is not None and is_keyed():
            response.headers.setdefault("Cache-Control", "no-store")
        return response
    if response.status_code not in (200, 304):
        # An error (a 404 for an id an import may add) must not outlive the next write in a cache.
        response.headers["Cache-Control"] = "no-store"
        return response
    if response.status_code == 200 and not state.hit and request.method == "GET":
        keep(state, response)
    if response.status_code == 200 and unmodified_since(state):
        response.close()  # a stream not sent lets go of its cursor
        response = not_modified_response()
    max_age = current_app.config["CACHE_MAX_AGE"]
    # A record with a version of its own (a service) carries that as its ETag, for If-Match.
    record_etag = g.get("record_etag") or (response.headers.get("X-Record-Version") if state.hit else None)
    response.headers.pop("X-Record-Version", None)
    if record_etag and response.status_code == 200 and request.if_none_match.contains(record_etag):
        response.close()
        response = not_modified_response()
    response.set_etag(record_etag or state.etag)
    response.vary.add("Accept-Language")
    response.headers["Cache-Control"] = f"public, max-age={max_age}" if max_age > 0 else "public, no-cache"
    modified = last_modified(state.version)
    if modified is not None:
        response.headers["Last-Modified"] = modified
    return response


def keep(state: Cacheable, response: Response) -> None:
    cache = current_app.extensions["occh_result_cache"]
    if cache is None or response.is_streamed or response.direct_passthrough or "Set-Cookie" in response.headers:
        return
    body = response.get_data()
    if len(body) > current_app.config["RESULT_CACHE_MAX_BYTES"]:
        return
    headers = [(key, value) for key, value in response.headers.items() if key.lower() not in UNSTORED_HEADERS]
    if g.get("record_etag"):
        headers.append(("X-Record-Version", g.record_etag))
    cache.put(state.digest, state.version.tag, CachedAnswer(headers, body))


def init_caching(app: Flask) -> None:
    """Call after init_limits_and_headers: refusals and rate limits come before any 304."""
    # Settings that change bodies are part of the release: instances sharing a Redis result
    # cache but set differently do not serve each other's answers.
    settings = (app.config["API_VERSION"], app.config["HSDS_PROFILE_URL"], str(app.config["EXACT_COUNT_LIMIT"]))
    app.extensions["occh_release"] = release_fingerprint("\n".join(settings))
    app.extensions["occh_result_cache"] = result_cache_for(app.config)
    connect_args = app.config["SQLALCHEMY_ENGINE_OPTIONS"].get("connect_args", {})
    with app.app_context():  # connects on the first read of each thread, not here
        app.extensions["occh_version_reader"] = directory_version.VersionReader(db.engine, connect_args)
    app.before_request(answer_from_caches)
    app.after_request(add_cache_headers)


NOT_MODIFIED_DOC = {
    "description": "Not Modified: the `ETag` in `If-None-Match` (or the time in `If-Modified-Since`) is "
    "still current. Public reads carry a strong `ETag`, `Last-Modified` and `Cache-Control`."
}


class CachingDocPlugin(BasePlugin):
    """Documents the 304 of every public read (a GET with no API key and no probe)."""

    def operation_helper(self, path=None, operations=None, **kwargs):
        if path in PROBES:
            return
        for method, operation in (operations or {}).items():
            if method == "get" and isinstance(operation, dict) and not operation.get("security"):
                operation.setdefault("responses", {}).setdefault("304", dict(NOT_MODIFIED_DOC))
