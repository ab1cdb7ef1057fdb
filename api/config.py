"""Configuration classes. Every setting comes from an environment variable (see README)."""

from __future__ import annotations

import importlib.util
import os
from pathlib import Path

from api.examples import DESCRIPTION as API_DESCRIPTION

ROOT = Path(__file__).resolve().parent.parent


def _list(name: str, default: str = "") -> list[str]:
    return [item.strip() for item in os.environ.get(name, default).split(",") if item.strip()]


def _int(name: str, default: int) -> int:
    value = os.environ.get(name, "").strip()
    return int(value) if value else default


def _bool(name: str, default: bool) -> bool:
    value = os.environ.get(name, "").strip().lower()
    return default if not value else value in ("1", "true", "yes", "on")


def _float(name: str, default: float) -> float:
    value = os.environ.get(name, "").strip()
    return float(value) if value else default


def normalise_database_url(url: str) -> str:
    """Accept plain `postgresql://` URLs and use the psycopg 3 driver for them."""
    for prefix in ("postgres://", "postgresql://"):
        if url.startswith(prefix):
            return "postgresql+psycopg://" + url[len(prefix) :]
    return url


class Config:
    """Settings read from the environment when the class is created."""

    def __init__(self) -> None:
        self.SQLALCHEMY_DATABASE_URI = normalise_database_url(
            os.environ.get("DATABASE_URL", f"sqlite:///{ROOT / 'instance' / 'occh.db'}")
        )
        self.CORS_ORIGINS = _list("CORS_ORIGINS")
        self.HSDS_PROFILE_URL = os.environ.get("HSDS_PROFILE_URL", "")
        self.LOG_LEVEL = os.environ.get("LOG_LEVEL", "INFO")
        self.DATABASE_CONNECT_TIMEOUT = _int("DATABASE_CONNECT_TIMEOUT", 5)
        # Webhook retries wait WEBHOOK_BACKOFF_BASE_S x 2^(attempt-1), capped at an hour.
        self.WEBHOOK_BACKOFF_BASE_S = _float("WEBHOOK_BACKOFF_BASE_S", 2.0)
        # Webhook safety (see core/webhooks/addresses.py): public https receivers only, unless allowed
        # (private networks: for tests and closed networks only).
        self.WEBHOOK_ALLOW_PRIVATE_NETWORKS = _bool("WEBHOOK_ALLOW_PRIVATE_NETWORKS", False)
        self.WEBHOOK_ALLOW_HTTP = _bool("WEBHOOK_ALLOW_HTTP", False)
        self.WEBHOOK_TIMEOUT_S = _float("WEBHOOK_TIMEOUT_S", 10.0)
        self.WEBHOOK_MAX_PER_CLIENT = _int("WEBHOOK_MAX_PER_CLIENT", 5)
        self.WEBHOOK_POOL_SIZE = _int("WEBHOOK_POOL_SIZE", 8)
        # Request limits and proxies (see api/limits.py).
        self.MAX_BODY_BYTES = _int("MAX_BODY_BYTES", 64 * 1024)
        self.MAX_QUERY_BYTES = _int("MAX_QUERY_BYTES", 2048)
        self.PROXY_HOPS = _int("PROXY_HOPS", 0)
        # Host headers answered (any port); any other is a 400 (see api/guards.py). Not Flask's
        # own TRUSTED_HOSTS key, which cannot match IPv6 literals such as [::1].
        self.TRUSTED_HOST_NAMES = _list("TRUSTED_HOSTS", "localhost,127.0.0.1,[::1]")
        # The result cache's own Redis (see api/caching.py): never the rate limits' REDIS_URL.
        self.CACHE_REDIS_URL = os.environ.get("CACHE_REDIS_URL", "")
        # Rate limits: Redis when REDIS_URL is set (shared by every instance), memory otherwise.
        self.REDIS_URL = os.environ.get("REDIS_URL", "")
        self.RATELIMIT_ENABLED = _bool("RATELIMIT_ENABLED", True)
        self.RATELIMIT_PUBLIC = os.environ.get("RATELIMIT_PUBLIC", "600 per minute")
        self.RATELIMIT_KEYED = os.environ.get("RATELIMIT_KEYED", "120 per minute")
        self.RATELIMIT_KEY_PREFIX = os.environ.get("RATELIMIT_KEY_PREFIX", "occh")
        # HTTP caching of public reads and the result cache (see api/caching.py).
        self.CACHE_MAX_AGE = _int("CACHE_MAX_AGE", 0)
        self.RESULT_CACHE_SIZE = _int("RESULT_CACHE_SIZE", 1000)
        self.RESULT_CACHE_MAX_BYTES = _int("RESULT_CACHE_MAX_BYTES", 256 * 1024)
        self.RESULT_CACHE_MEMORY_BYTES = _int("RESULT_CACHE_MEMORY_BYTES", 64 * 1024 * 1024)
        self.RESULT_CACHE_TTL = _int("RESULT_CACHE_TTL", 300)
        self.CACHE_KEY_PREFIX = os.environ.get("CACHE_KEY_PREFIX", "occh")
        # Service lists count matches exactly up to this many (0: always exactly); see core.paging.
        self.EXACT_COUNT_LIMIT = _int("EXACT_COUNT_LIMIT", 10_000)
        # Ranking of relevance pages (core.search.RANKERS): "tantivy" (an index per process that
        # stops early, built from the database and kept in step with it; core.ranking) or "sql"
        # (the database's own full-text index).
        self.SEARCH_RANKER = os.environ.get("SEARCH_RANKER", "tantivy").strip().lower() or "tantivy"
        if self.SEARCH_RANKER not in ("sql", "tantivy"):
            raise ValueError(f"SEARCH_RANKER must be sql or tantivy, not {self.SEARCH_RANKER!r}")
        if self.SEARCH_RANKER == "tantivy" and importlib.util.find_spec("tantivy") is None:
            raise ValueError("SEARCH_RANKER=tantivy needs the tantivy package (pip install -r requirements.txt)")
        # Where each process keeps its Tantivy index (a folder per process under it); unset: in
        # memory.
        self.SEARCH_INDEX_DIR = os.environ.get("SEARCH_INDEX_DIR", "").strip()
        # Encryption at rest of referrals' personal fields and webhook secrets (models/crypto.py):
        # the current key (base64 of 32 bytes, or `id:key`) and older keys that still decrypt.
        self.DATA_ENCRYPTION_KEY = os.environ.get("DATA_ENCRYPTION_KEY", "").strip()
        self.DATA_ENCRYPTION_KEYS = _list("DATA_ENCRYPTION_KEYS")
        # `flask referrals purge` erases closed referrals last changed more than this many days ago.
        self.REFERRAL_RETENTION_DAYS = _int("REFERRAL_RETENTION_DAYS", 0)
        # A referral whose child is older than this many years is refused (a mistyped birth date).
        self.REFERRAL_MAX_AGE_YEARS = _int("REFERRAL_MAX_AGE_YEARS", 26)
        # A capacity status older than this many days is served as unknown.
        self.CAPACITY_STALE_DAYS = _int("CAPACITY_STALE_DAYS", 30)
        # The web app (web/): session signing key (instance/secret_key is made when unset),
        # sign-in limit per address.
        self.SECRET_KEY = os.environ.get("SECRET_KEY", "")
        self.WEB_SIGNIN_RATELIMIT = os.environ.get("WEB_SIGNIN_RATELIMIT", "10 per minute")
        self.SESSION_COOKIE_SECURE = _bool("SESSION_COOKIE_SECURE", False)

    @property
    def SQLALCHEMY_ENGINE_OPTIONS(self) -> dict:
        """A pooled connection is checked before use (a restarted database server costs no
        request once it is back), and a PostgreSQL connection that cannot be opened within
        DATABASE_CONNECT_TIMEOUT seconds fails the request with a 503 instead of holding it."""
        options: dict = {"pool_pre_ping": True}
        if self.SQLALCHEMY_DATABASE_URI.startswith("postgresql"):
            options["connect_args"] = {"connect_timeout": self.DATABASE_CONNECT_TIMEOUT}
        return options

    # Fixed settings of the API documentation.
    API_TITLE = "OCCH program directory and referral API"
    API_VERSION = "1.0.0"
    OPENAPI_VERSION = "3.0.3"
    OPENAPI_URL_PREFIX = "/"
    OPENAPI_JSON_PATH = "openapi.json"
    OPENAPI_SWAGGER_UI_PATH = "/docs"
    OPENAPI_SWAGGER_UI_URL = "/docs/assets/"
    # No badge from validator.swagger.io: /docs sends the spec nowhere and loads nothing remote.
    OPENAPI_SWAGGER_UI_CONFIG = {"validatorUrl": None}
    API_SPEC_OPTIONS = {"info": {"description": API_DESCRIPTION}}
    SQLALCHEMY_TRACK_MODIFICATIONS = False
    JSON_SORT_KEYS = False
    TESTING = False


# The fixed key of the test suite (and of test servers started by it); never a real one.
TEST_DATA_ENCRYPTION_KEY = "test:" + __import__("base64").b64encode(bytes(range(32))).decode()


class TestConfig(Config):
    """Settings for the test suite: the database URL is given by the test."""

    TESTING = True

    def __init__(self, database_url: str) -> None:
        super().__init__()
        self.SQLALCHEMY_DATABASE_URI = normalise_database_url(database_url)
        # Tests of rate limits turn them on, with small limits of their own.
        self.RATELIMIT_ENABLED = False
        self.REDIS_URL = ""
        self.CACHE_REDIS_URL = ""
        self.DATA_ENCRYPTION_KEY = TEST_DATA_ENCRYPTION_KEY
        self.DATA_ENCRYPTION_KEYS = []
        self.SECRET_KEY = "test-secret-key-not-for-production"
