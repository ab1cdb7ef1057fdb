"""Configuration classes. Every setting comes from an environment variable (see README)."""
from __future__ import annotations

import os
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def _list(name: str, default: str = "") -> list[str]:
    return [item.strip() for item in os.environ.get(name, default).split(",") if item.strip()]


def _int(name: str, default: int) -> int:
    value = os.environ.get(name, "").strip()
    return int(value) if value else default


def _bool(name: str, default: bool) -> bool:
    value = os.environ.get(name, "").strip().lower()
    return default if not value else value in ("1", "true", "yes", "on")


def normalise_database_url(url: str) -> str:
    """Accept plain `postgresql://` URLs and use the psycopg 3 driver for them."""
    for prefix in ("postgres://", "postgresql://"):
        if url.startswith(prefix):
            return "postgresql+psycopg://" + url[len(prefix):]
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
        self.SQLALCHEMY_ENGINE_OPTIONS = {"pool_pre_ping": True}
        # Request limits and proxies (see api/limits.py).
        self.MAX_BODY_BYTES = _int("MAX_BODY_BYTES", 64 * 1024)
        self.MAX_QUERY_BYTES = _int("MAX_QUERY_BYTES", 2048)
        self.PROXY_HOPS = _int("PROXY_HOPS", 0)
        # Rate limits: Redis when REDIS_URL is set (shared by every instance), memory otherwise.
        self.REDIS_URL = os.environ.get("REDIS_URL", "")
        self.RATELIMIT_ENABLED = _bool("RATELIMIT_ENABLED", True)
        self.RATELIMIT_PUBLIC = os.environ.get("RATELIMIT_PUBLIC", "600 per minute")
        self.RATELIMIT_KEYED = os.environ.get("RATELIMIT_KEYED", "120 per minute")
        self.RATELIMIT_KEY_PREFIX = os.environ.get("RATELIMIT_KEY_PREFIX", "occh")

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
    SQLALCHEMY_TRACK_MODIFICATIONS = False
    JSON_SORT_KEYS = False
    TESTING = False


class TestConfig(Config):
    """Settings for the test suite: the database URL is given by the test."""

    TESTING = True

    def __init__(self, database_url: str) -> None:
        super().__init__()
        self.SQLALCHEMY_DATABASE_URI = normalise_database_url(database_url)
        # Tests of rate limits turn them on, with small limits of their own.
        self.RATELIMIT_ENABLED = False
        self.REDIS_URL = ""
