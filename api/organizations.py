"""Organizations: the hospital and its Office for Community Child Health."""

import uuid

from flask import jsonify
from flask.views import MethodView
from flask_smorest import Blueprint

from api import writes
from api.auth import keyed
from api.common import QUERY, ndjson_doc, ndjson_response, page_response, session
from core import directory
from schemas.args import OrganizationArgs, OrganizationListArgs
from schemas.hsds import OrganizationBriefSchema, OrganizationFullServiceSchema, OrganizationSchema, page_of

blp = Blueprint("organizations", __name__, url_prefix="/organizations", description="Organizations.")

OrganizationPage = page_of(
    OrganizationBriefSchema, "OrganizationPage", full=(OrganizationSchema, OrganizationFullServiceSchema)
)


def _schema(full: bool, full_service: bool):
    if full_service:
        return OrganizationFullServiceSchema()
    return OrganizationSchema() if full else OrganizationBriefSchema()


@blp.route("")
class Organizations(MethodView):
    @blp.arguments(OrganizationListArgs(), **QUERY)
    @blp.response(200, OrganizationPage)
    @blp.alt_response(200, **ndjson_doc(OrganizationBriefSchema, "organization"))
    @blp.alt_response(422, description="A query parameter is invalid or unknown.")
    def get(self, args):
        """List organizations.

        Sorted by name. `search` keeps the organizations whose name, alternate name or
        description holds every word, or that provide an active service matching the words
        (best-matching service first). `full=true` nests phones, locations, programs and
        services; `full_service=true` nests each service as a full record. `format=ndjson`
        streams every match, one record a line, with no envelope and no paging.
        """
        full, full_service, search = args["full"], args["full_service"], args.get("search")
        schema = _schema(full, full_service)
        if args["format"] == "ndjson":
            return ndjson_response(directory.stream_organizations(session(), full, full_service, search), schema)
        page = directory.list_organizations(session(), args["page"], args["per_page"], full, full_service, search)
        return page_response(page, schema)

    @keyed(blp, *writes.ADMIN_ONLY, errors=writes.errors("organization"))
    @blp.doc(requestBody={"required": True, "content": {"application/json": {"schema": {"type": "object"}}}})
    @blp.response(201, OrganizationSchema)
    def post(self):
        """Create an organization from its record (a `directory:admin` key).

        Checked by the rules of `flask hsds import`."""
        return writes.write("organization", OrganizationSchema, None, "create")


@blp.route("/<uuid:organization_id>")
class OrganizationById(MethodView):
    @blp.arguments(OrganizationArgs(), **QUERY)
    @blp.response(200, OrganizationSchema)
    @blp.doc(
        responses={
            "200": {
                "content": {
                    "application/json": {"schema": {"anyOf": [OrganizationSchema, OrganizationFullServiceSchema]}}
                }
            }
        }
    )
    @blp.alt_response(404, description="No organization has this id.")
    @blp.alt_response(422, description="A query parameter is invalid or unknown.")
    def get(self, args, organization_id: uuid.UUID):
        """Get an organization with its phones, locations, programs and services.

        `full_service=true` nests each service as a full record.
        """
        organization = directory.get_organization(session(), organization_id, args["full_service"])
        if args["full_service"]:
            return jsonify(OrganizationFullServiceSchema().dump(organization))
        writes.record_etag(OrganizationSchema, organization)
        return organization

    @keyed(blp, *writes.ADMIN_ONLY, errors=writes.errors("organization"))
    @blp.doc(
        parameters=[writes.if_match_doc()],
        requestBody={"required": True, "content": {"application/json": {"schema": {"type": "object"}}}},
    )
    @blp.response(200, OrganizationSchema)
    def put(self, organization_id: uuid.UUID):
        """Replace an organization with its full record (a `directory:admin` key).

        Checked by the rules of `flask hsds import`; send the record's `ETag` as `If-Match`.
        """
        return writes.write("organization", OrganizationSchema, organization_id, "replace")

    @keyed(blp, *writes.ADMIN_ONLY, errors=writes.errors("organization"))
    @blp.doc(
        parameters=[writes.if_match_doc()],
        requestBody={"required": True, "content": {"application/merge-patch+json": {"schema": {"type": "object"}}}},
    )
    @blp.response(200, OrganizationSchema)
    def patch(self, organization_id: uuid.UUID):
        """Change some fields of an organization: a JSON Merge Patch (RFC 7396) of its record.

        A `directory:admin` key."""
        return writes.write("organization", OrganizationSchema, organization_id, "patch")

    @keyed(
        blp,
        *writes.ADMIN_ONLY,
        errors=writes.delete_errors("organization", "by its services, programs, locations or child organizations"),
    )
    @blp.doc(parameters=[writes.if_match_doc()])
    @blp.response(204)
    def delete(self, organization_id: uuid.UUID):
        """Delete an organization with its own phones and contacts (a `directory:admin` key).

        Refused with 409 while services, programs, locations or other organizations point at
        it; the message says which and how many. Send the record's `ETag` as `If-Match`.
        """
        return writes.remove("organization", OrganizationSchema, organization_id)
