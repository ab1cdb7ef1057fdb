"""GET /: what this API is and how it relates to HSDS."""
from flask import current_app, request, url_for
from flask.views import MethodView
from flask_smorest import Blueprint
from marshmallow import Schema, fields

blp = Blueprint("meta", __name__, url_prefix="/", description="About this API.")


class ApiMetaSchema(Schema):
    version = fields.String(required=True, metadata={"description": "HSDS version of this API."})
    profile = fields.URL(required=True, metadata={"description": "Where this API's HSDS profile is described."})
    openapi_url = fields.URL(required=True, metadata={"description": "The OpenAPI document of this API."})


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
            "version": "3.0",
            "profile": current_app.config["HSDS_PROFILE_URL"] or base + url_for("api-docs.openapi_swagger_ui"),
            "openapi_url": base + url_for("api-docs.openapi_json"),
        }


class HealthSchema(Schema):
    status = fields.String(required=True, metadata={"description": "`ok` while the process serves requests."})


@blp.route("healthz")
class Health(MethodView):
    @blp.response(200, HealthSchema)
    def get(self):
        """Liveness: the process is up. Touches no database."""
        return {"status": "ok"}
