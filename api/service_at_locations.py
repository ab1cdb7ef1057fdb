"""Services at locations: where a service is offered."""
import uuid

from flask.views import MethodView
from flask_smorest import Blueprint

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
    @blp.arguments(ServiceFilterArgs, **QUERY)
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
            return ndjson_response(directory.stream_service_at_locations(session(), query_from(args), args["full"]), schema)
        page = directory.list_service_at_locations(
            session(), query_from(args), args["page"], args["per_page"], args["full"], count_limit()
        )
        return page_response(page, schema)


@blp.route("/<uuid:sal_id>")
class ServiceAtLocationById(MethodView):
    @blp.response(200, ServiceAtLocationSchema)
    @blp.alt_response(404, description="No service at location has this id.")
    def get(self, sal_id: uuid.UUID):
        """Get a service at a location, with the location and the service."""
        return directory.get_service_at_location(session(), sal_id)
