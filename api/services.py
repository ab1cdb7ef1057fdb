"""Services: the things a family can be referred to."""
import uuid

from flask.views import MethodView
from flask_smorest import Blueprint

from api.common import QUERY, page_response, session
from core import directory
from schemas.args import ServiceListArgs
from schemas.hsds import ServiceListItemSchema, ServiceSchema, page_of

blp = Blueprint("services", __name__, url_prefix="/services", description="Services and their referral contact points.")

ServicePage = page_of(ServiceListItemSchema, "ServicePage")


def filters_from(args: dict) -> directory.ServiceFilters:
    return directory.ServiceFilters(
        organization_ids=args["organization_id"],
        program_ids=args["program_id"],
        taxonomy_term_ids=args["taxonomy_term_id"],
        taxonomy_ids=args["taxonomy_id"],
        statuses=args["status"],
        modified_after=args.get("modified_after"),
    )


@blp.route("")
class Services(MethodView):
    @blp.arguments(ServiceListArgs, **QUERY)
    @blp.response(200, ServicePage)
    @blp.alt_response(422, description="A query parameter is invalid or unknown.")
    def get(self, args):
        """List services.

        Active services by default, sorted by name. Filters combine with AND; a filter
        repeated (`?program_id=a&program_id=b`) matches any of its values. A category filter
        also matches every category below it. With `full=true` each service is the full
        nested record, as `GET /services/{id}` returns it.
        """
        page = directory.list_services(session(), filters_from(args), args["page"], args["per_page"], args["full"])
        return page_response(page, ServiceSchema() if args["full"] else ServiceListItemSchema())


@blp.route("/<uuid:service_id>")
class ServiceById(MethodView):
    @blp.response(200, ServiceSchema)
    @blp.alt_response(404, description="No service has this id.")
    def get(self, service_id: uuid.UUID):
        """Get a service, fully nested, with its referral contact points.

        `referral_contact_points` says who to contact to refer a child to this service and
        how: channel, value, the audience served and the purpose.
        """
        return directory.get_service(session(), service_id)
