"""The Flask application: create_app(config) builds it from a config class."""
from __future__ import annotations

from flask import Flask
from sqlalchemy import event

from api.caching import CachingDocPlugin, init_caching
from api.config import Config
from api.errors import register_error_handlers
from api.logs import configure_logging, register_request_logging
from api.extensions import api, cors, db, migrate
from api.limits import LimitsDocPlugin, init_limits_and_headers
from core.geo import distance_m
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


def create_app(config: type[Config] | Config = Config) -> Flask:
    app = Flask(__name__, instance_path=str(ROOT_PATH / "instance"))
    app.config.from_object(config() if isinstance(config, type) else config)
    configure_logging(app.config["LOG_LEVEL"])
    app.json.sort_keys = False

    db.init_app(app)
    with app.app_context():
        if db.engine.dialect.name == "sqlite":
            event.listen(db.engine, "connect", prepare_sqlite_connection)
    migrate.init_app(app, db, directory=str(ROOT_PATH / "migrations"), render_as_batch=True)
    private = {"origins": app.config["CORS_ORIGINS"], "send_wildcard": False, "vary_header": True}
    cors.init_app(
        app,
        # Referral data only to the configured origins; the public directory to any.
        resources={
            r"/referrals.*": private,
            r"/webhooks.*": private,
            r"/fhir/(ServiceRequest|Task)\b.*": private,
            r"/fhir/?$": private,
            r"/.*": {"origins": "*", "send_wildcard": True},
        },
        expose_headers=["Location", "ETag", "Link"],
        allow_headers=["Authorization", "Content-Type", "Idempotency-Key", "If-Match", "If-None-Match"],
    )
    api.init_app(app, spec_kwargs={"extra_plugins": [LimitsDocPlugin(), CachingDocPlugin()]})
    api.spec.components.security_scheme("bearerAuth", {"type": "http", "scheme": "bearer"})
    api.ma_plugin.converter.add_attribute_function(any_of_records)

    from api import (
        docs,
        fhir,
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
        referral_contact_points,
        referrals,
        webhooks,
        fhir,
    ):
        api.register_blueprint(module.blp)
    app.register_blueprint(docs.assets)

    from api.cli import register_commands

    register_commands(app)
    from web import init_web

    init_web(app)  # the web app under /app/ (issue 14)
    register_error_handlers(app)
    register_request_logging(app)
    init_limits_and_headers(app)
    init_caching(app)
    return app
