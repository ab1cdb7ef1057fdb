"""GET /: what this API is and how it relates to HSDS; the liveness and readiness probes."""

from alembic.script import ScriptDirectory
from flask import current_app, jsonify, request, url_for
from flask.views import MethodView
from flask_smorest import Blueprint
from sqlalchemy import inspect, text
from sqlalchemy.exc import SQLAlchemyError

from api.errors import error_body
from api.extensions import db
from core.hsds.profile import HSDS_VERSION
from schemas.errors import NotReadySchema
from schemas.meta import ApiMetaSchema, HealthSchema, ReadySchema

blp = Blueprint("meta", __name__, url_prefix="/", description="About this API.")


@blp.route("")
class ApiMeta(MethodView):
    @blp.response(200, ApiMetaSchema)
    def get(self):
        """About this API: HSDS version, profile and OpenAPI document.

        The profile is HSDS 3.0 with two extensions: `referral_contact_points` on a full
        service record, and a `slug` on programs.
        """
        base = request.url_root.rstrip("/")
        return {
            "version": HSDS_VERSION,
            "profile": current_app.config["HSDS_PROFILE_URL"] or base + url_for("api-docs.openapi_swagger_ui"),
            "openapi_url": base + url_for("api-docs.openapi_json"),
        }


@blp.route("healthz")
class Health(MethodView):
    @blp.response(200, HealthSchema)
    def get(self):
        """Liveness: the process is up. Touches no database."""
        return {"status": "ok"}


def migration_heads() -> set[str]:
    """The head revisions of the migrations this code ships with (read once per app)."""
    heads = current_app.extensions.get("occh_migration_heads")
    if heads is None:
        directory = current_app.extensions["migrate"].directory
        heads = current_app.extensions["occh_migration_heads"] = set(ScriptDirectory(directory).get_heads())
    return heads


def readiness_problem() -> str | None:
    """Why this instance should not get traffic, as a stable name, or None."""
    try:
        with db.engine.connect() as connection:
            current = (
                set(connection.scalars(text("SELECT version_num FROM alembic_version")))
                if inspect(connection).has_table("alembic_version")
                else set()
            )
    except SQLAlchemyError:
        return "database_unreachable"
    return None if current == migration_heads() else "migrations_pending"


NOT_READY = {
    "database_unreachable": "Not ready: the database does not answer.",
    "migrations_pending": "Not ready: the database schema is not at the revision this code needs.",
}


@blp.route("readyz")
class Ready(MethodView):
    @blp.response(200, ReadySchema)
    @blp.alt_response(
        503,
        schema=NotReadySchema,
        description="Not ready: `reason` is `database_unreachable` (with `Retry-After`) "
        "or `migrations_pending`, in the error envelope.",
        headers={
            "Retry-After": {
                "description": "Seconds to wait before asking again (database unreachable).",
                "schema": {"type": "integer"},
            }
        },
    )
    def get(self):
        """Readiness: the database answers and its schema is at the migrations' head.

        Answers 503 otherwise, with a `reason` and no detail of the database.
        """
        reason = readiness_problem()
        if reason is None:
            return {"status": "ready"}
        response = jsonify({**error_body(503, NOT_READY[reason]), "reason": reason})
        response.status_code = 503
        response.headers["Cache-Control"] = "no-store"
        if reason == "database_unreachable":
            response.headers["Retry-After"] = "5"
        return response
