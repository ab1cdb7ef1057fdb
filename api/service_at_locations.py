"""Services at locations: where a service is offered."""

import uuid

from flask.views import MethodView
from flask_smorest import Blueprint

from api import writes
from api.auth import keyed
from api.common import QUERY, count_limit, ndjson_doc, ndjson_response, page_response, session
from api.services import query_from
from core import directory
from schemas.args import ServiceFilterArgs
from schemas.hsds import ServiceAtLocationListItemSchema, ServiceAtLocationSchema, page_of

blp = Blueprint(
    "service_at_locations", __name__, url_prefix="/service_at_locations", description="Where services are offered."
)

ServiceAtLocationPage = page_of(
    ServiceAtLocationListItemSchema, "ServiceAtLocationPage", full=(ServiceAtLocationSchema,), guidance=True
)


@blp.route("")
class ServiceAtLocations(MethodView):
    @blp.arguments(ServiceFilterArgs(), **QUERY)
    @blp.response(200, ServiceAtLocationPage)
    @blp.alt_response(200, **ndjson_doc(ServiceAtLocationListItemSchema, "service at location"))
    @blp.alt_response(422, description="A query parameter is invalid or unknown.")
    def get(self, args):
        """List or search services at locations.

        Takes the same search, filters, point and sort as `GET /services`, applied to the
        service offered; `distance` is measured to this location's service. `full=true` adds
        the phones, contacts and schedules of each. `format=ndjson` streams every match, one
        record a line, with no envelope and no paging. Totals are counted as on `GET /services`.
        """
        schema = ServiceAtLocationSchema() if args["full"] else ServiceAtLocationListItemSchema()
        if args["format"] == "ndjson":
            return ndjson_response(
                directory.stream_service_at_locations(session(), query_from(args), args["full"]), schema
            )
        page = directory.list_service_at_locations(
            session(), query_from(args), args["page"], args["per_page"], args["full"], count_limit()
        )
        return page_response(page, schema)

    @keyed(blp, *writes.STAFF, errors=writes.errors("service at location"))
    @blp.doc(requestBody={"required": True, "content": {"application/json": {"schema": {"type": "object"}}}})
    @blp.response(201, ServiceAtLocationSchema)
    def post(self):
        """Create a service at location from its record (program staff of its service, or an admin).

        Checked by the rules of `flask hsds import`."""
        return writes.write("service_at_location", ServiceAtLocationSchema, None, "create")


@blp.route("/<uuid:sal_id>")
class ServiceAtLocationById(MethodView):
    @blp.response(200, ServiceAtLocationSchema)
    @blp.alt_response(404, description="No service at location has this id.")
    def get(self, sal_id: uuid.UUID):
        """Get a service at a location, with the location and the service."""
        sal = directory.get_service_at_location(session(), sal_id)
        writes.record_etag(ServiceAtLocationSchema, sal)
        return sal

    @keyed(blp, *writes.STAFF, errors=writes.errors("service at location"))
    @blp.doc(
        parameters=[writes.if_match_doc()],
        requestBody={"required": True, "content": {"application/json": {"schema": {"type": "object"}}}},
    )
    @blp.response(200, ServiceAtLocationSchema)
    def put(self, sal_id: uuid.UUID):
        """Replace a service at location with its full record (program staff of its service, or an admin).

        Checked by the rules of `flask hsds import`; send the record's `ETag` as `If-Match`.
        """
        return writes.write("service_at_location", ServiceAtLocationSchema, sal_id, "replace")

    @keyed(blp, *writes.STAFF, errors=writes.errors("service at location"))
    @blp.doc(
        parameters=[writes.if_match_doc()],
        requestBody={"required": True, "content": {"application/merge-patch+json": {"schema": {"type": "object"}}}},
    )
    @blp.response(200, ServiceAtLocationSchema)
    def patch(self, sal_id: uuid.UUID):
        """Change some fields of a service at location: a JSON Merge Patch (RFC 7396) of its record.

        Program staff of its service, or an admin."""
        return writes.write("service_at_location", ServiceAtLocationSchema, sal_id, "patch")

    @keyed(blp, *writes.STAFF, errors=writes.delete_errors("service at location", None))
    @blp.doc(parameters=[writes.if_match_doc()])
    @blp.response(204)
    def delete(self, sal_id: uuid.UUID):
        """Stop offering a service at a location: delete the service at location with its dependants.

        Its phones, contacts and schedules go with it. Program staff of its service, or an admin.

        The location stays. Send the record's `ETag` as `If-Match`.
        """
        return writes.remove("service_at_location", ServiceAtLocationSchema, sal_id)
