"""Configuration classes. Every setting comes from an environment variable (see README)."""
from __future__ import annotations

import os
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def _list(name: str, default: str = "") -> list[str]:
    return [item.strip() for item in os.environ.get(name, default).split(",") if item.strip()]


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

    # Fixed settings of the API documentation.
    API_TITLE = "OCCH program directory and referral API"
    API_VERSION = "1.0.0"
    OPENAPI_VERSION = "3.0.3"
    OPENAPI_URL_PREFIX = "/"
    OPENAPI_JSON_PATH = "openapi.json"
    OPENAPI_SWAGGER_UI_PATH = "/docs"
    OPENAPI_SWAGGER_UI_URL = "/docs/assets/"
    SQLALCHEMY_TRACK_MODIFICATIONS = False
    JSON_SORT_KEYS = False
    TESTING = False


class TestConfig(Config):
    """Settings for the test suite: the database URL is given by the test."""

    TESTING = True

    def __init__(self, database_url: str) -> None:
        super().__init__()
        self.SQLALCHEMY_DATABASE_URI = normalise_database_url(database_url)
