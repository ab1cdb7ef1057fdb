"""Locations: the places services are offered (HSDS `location`)."""

import uuid

from flask.views import MethodView
from flask_smorest import Blueprint

from api import writes
from api.auth import keyed
from api.common import QUERY, page_response, session
from core import directory
from schemas.args import PageArgs, _ids
from schemas.hsds import LocationSchema, page_of

blp = Blueprint("locations", __name__, url_prefix="/locations", description="Places where services are offered.")

LocationPage = page_of(LocationSchema, "LocationPage")
RECORD_BODY = {
    "required": True,
    "description": "An HSDS location record: the shape `GET /locations/{id}` answers.",
    "content": {"application/json": {"schema": {"type": "object"}}},
}


class LocationListArgs(PageArgs):
    organization_id = _ids("Only locations of these organizations.")


@blp.route("")
class Locations(MethodView):
    @blp.arguments(LocationListArgs(), **QUERY)
    @blp.response(200, LocationPage)
    @blp.alt_response(422, description="A query parameter is invalid or unknown.")
    def get(self, args):
        """List locations, with their addresses, phones and languages.

        Sorted by name. `organization_id` keeps the locations of those organizations.
        """
        page = directory.list_locations(session(), args["organization_id"], args["page"], args["per_page"])
        return page_response(page, LocationSchema())

    @keyed(blp, *writes.STAFF, errors=writes.errors("location"))
    @blp.doc(requestBody=RECORD_BODY)
    @blp.response(201, LocationSchema)
    def post(self):
        """Create a location from its HSDS record (program staff or an admin).

        Checked by the rules of `flask hsds import`; `id` is made when absent. Offer a service
        there with `POST /service_at_locations`.
        """
        return writes.write("location", LocationSchema, None, "create")


@blp.route("/<uuid:location_id>")
class LocationById(MethodView):
    @blp.response(200, LocationSchema)
    @blp.alt_response(404, description="No location has this id.")
    def get(self, location_id: uuid.UUID):
        """Get a location with its addresses, phones and languages."""
        location = directory.get_location(session(), location_id)
        writes.record_etag(LocationSchema, location)
        return location

    @keyed(blp, *writes.STAFF, errors=writes.errors("location"))
    @blp.doc(parameters=[writes.if_match_doc()], requestBody=RECORD_BODY)
    @blp.response(200, LocationSchema)
    def put(self, location_id: uuid.UUID):
        """Replace a location with its full record.

        An admin, or program staff when no other program's service is offered there.

        Checked by the rules of `flask hsds import`; send the record's `ETag` as `If-Match`.
        """
        return writes.write("location", LocationSchema, location_id, "replace")

    @keyed(blp, *writes.STAFF, errors=writes.errors("location"))
    @blp.doc(
        parameters=[writes.if_match_doc()],
        requestBody={"required": True, "content": {"application/merge-patch+json": {"schema": {"type": "object"}}}},
    )
    @blp.response(200, LocationSchema)
    def patch(self, location_id: uuid.UUID):
        """Change some fields of a location: a JSON Merge Patch (RFC 7396) of its record.

        An admin, or program staff when no other program's service is offered there."""
        return writes.write("location", LocationSchema, location_id, "patch")

    @keyed(blp, *writes.STAFF, errors=writes.delete_errors("location", "services are offered there"))
    @blp.doc(parameters=[writes.if_match_doc()])
    @blp.response(204)
    def delete(self, location_id: uuid.UUID):
        """Delete a location no service is offered at, with its addresses, phones and languages.

        An admin, or program staff when no other program's service is offered there.

        A location some service is still offered at is a 409 naming how many services at
        locations point at it: delete those first. Send the record's `ETag` as `If-Match`.
        """
        return writes.remove("location", LocationSchema, location_id)
