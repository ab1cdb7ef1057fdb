"""The Flask application: create_app(config) builds it from a config class."""
from __future__ import annotations

import logging

from flask import Flask

from api.config import Config
from api.errors import register_error_handlers
from api.extensions import api, cors, db, migrate

ROOT_PATH = __import__("pathlib").Path(__file__).resolve().parent.parent


def create_app(config: type[Config] | Config = Config) -> Flask:
    app = Flask(__name__, instance_path=str(ROOT_PATH / "instance"))
    app.config.from_object(config() if isinstance(config, type) else config)
    logging.basicConfig(level=app.config["LOG_LEVEL"])
    app.json.sort_keys = False

    db.init_app(app)
    migrate.init_app(app, db, directory=str(ROOT_PATH / "migrations"), render_as_batch=True)
    cors.init_app(
        app, resources={r"/*": {"origins": "*"}}, send_wildcard=True, expose_headers=["Location", "ETag", "Link"]
    )
    api.init_app(app)

    from api import docs, organizations, programs, referral_contact_points, root, service_at_locations, services, taxonomies

    for module in (root, services, service_at_locations, organizations, programs, taxonomies, referral_contact_points):
        api.register_blueprint(module.blp)
    app.register_blueprint(docs.assets)

    from api.cli import register_commands

    register_commands(app)
    register_error_handlers(app)
    return app
