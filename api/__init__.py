"""The Flask application: create_app(config) builds it from a config class."""

from __future__ import annotations

import os
from pathlib import Path

from flask import Flask
from sqlalchemy import event
from sqlalchemy.engine import make_url

from api.auth import keyed_operations, keyed_rules
from api.caching import CachingDocPlugin, init_caching
from api.config import Config
from api.context import register_request_context
from api.errors import register_error_handlers
from api.examples import ExamplesDocPlugin
from api.extensions import api, cors, db, migrate
from api.guards import init_body_guard, init_request_guards
from api.limits import LimitsDocPlugin, init_limits_and_headers
from api.logs import configure_logging, register_request_logging
from core.geo import distance_m
from models import crypto
from schemas.hsds import any_of_records

ROOT_PATH = __import__("pathlib").Path(__file__).resolve().parent.parent


def prepare_sqlite_connection(dbapi_connection, connection_record) -> None:
    """SQLite: the distance function PostgreSQL gets from the migration, WAL for concurrent
    readers, and a wait instead of an error when another process holds the write lock."""
    dbapi_connection.create_function("distance_m", 4, distance_m, deterministic=True)
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA busy_timeout=10000")
    cursor.close()


def configure_encryption(app: Flask) -> None:
    """The keyring of models/crypto.py from DATA_ENCRYPTION_KEY(S). Without a key the app does
    not start (personal data is never stored in plain text): one line on stderr, exit status 1."""
    keys = list(app.config.get("DATA_ENCRYPTION_KEYS") or [])
    current = app.config.get("DATA_ENCRYPTION_KEY") or (keys[0] if keys else "")
    try:
        crypto.configure(current, keys)
    except crypto.EncryptionKeyError as exc:
        raise SystemExit(
            f"occh: cannot start: {exc} Set DATA_ENCRYPTION_KEY to 32 random bytes in base64"
            " (e.g. `python -c 'import base64,os;print(base64.b64encode(os.urandom(32)).decode())'`);"
            " `make run` makes a local one under instance/."
        ) from None


def create_sqlite_file(url: str) -> None:
    """Create a SQLite database file readable by its owner only (0600) before SQLite does; its
    -wal and -shm files take the same mode from it."""
    database = make_url(url).database if url.startswith("sqlite") else None
    if not database or database == ":memory:" or database.startswith("file:"):
        return
    path = Path(database)
    if not path.exists() and path.parent.is_dir():
        os.close(os.open(path, os.O_CREAT | os.O_WRONLY, 0o600))


def create_app(config: type[Config] | Config = Config) -> Flask:
    app = Flask(__name__, instance_path=str(ROOT_PATH / "instance"))
    app.config.from_object(config() if isinstance(config, type) else config)
    configure_logging(app.config["LOG_LEVEL"])
    configure_encryption(app)
    create_sqlite_file(app.config["SQLALCHEMY_DATABASE_URI"])

    db.init_app(app)
    with app.app_context():
        if db.engine.dialect.name == "sqlite":
            event.listen(db.engine, "connect", prepare_sqlite_connection)
    migrate.init_app(app, db, directory=str(ROOT_PATH / "migrations"), render_as_batch=True)
    api.init_app(app, spec_kwargs={"extra_plugins": [LimitsDocPlugin(), CachingDocPlugin(), ExamplesDocPlugin()]})
    api.spec.components.security_scheme("bearerAuth", {"type": "http", "scheme": "bearer"})
    api.ma_plugin.converter.add_attribute_function(any_of_records)

    from api import (
        docs,
        fhir,
        locations,
        organizations,
        programs,
        referral_contact_points,
        referrals,
        root,
        service_at_locations,
        services,
        taxonomies,
        webhooks,
    )

    for module in (
        root,
        services,
        service_at_locations,
        organizations,
        programs,
        taxonomies,
        locations,
        referral_contact_points,
        referrals,
        webhooks,
        fhir,
    ):
        api.register_blueprint(module.blp)
    app.register_blueprint(docs.assets)
    app.extensions["occh_keyed"] = keyed_operations(app)
    app.extensions["occh_keyed_paths"] = [__import__("re").compile(rule) for rule in keyed_rules(app)]
    from core import editing
    from core import referrals as referral_rules

    editing.settings["capacity_stale_days"] = app.config["CAPACITY_STALE_DAYS"]
    referral_rules.settings["max_age_years"] = app.config["REFERRAL_MAX_AGE_YEARS"]
    private = {"origins": app.config["CORS_ORIGINS"], "send_wildcard": False, "vary_header": True}
    cors.init_app(
        app,
        # Referral data only to the configured origins; the public directory to any.
        resources={
            # Every path whose operations all need a key (declared with api.auth.require).
            **{rule: private for rule in keyed_rules(app)},
            r"/.*": {"origins": "*", "send_wildcard": True},
        },
        # X-Request-ID: a client may send its own and reads the one that was logged (api.logs).
        expose_headers=["Location", "ETag", "X-Request-ID"],
        allow_headers=["Authorization", "Content-Type", "Idempotency-Key", "If-Match", "If-None-Match", "X-Request-ID"],
    )

    from api.cli import register_commands

    register_commands(app)
    from web import init_web

    init_web(app)  # the web app under /app/ (issue 14)
    register_error_handlers(app)
    register_request_logging(app)
    init_request_guards(app)  # Host, and text of the URL: before limits and caches
    register_request_context(app)
    init_limits_and_headers(app)
    init_body_guard(app)  # the strict JSON reader (and writer of unsorted members)
    init_caching(app)
    return app
