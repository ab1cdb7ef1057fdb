"""Services: the things a family can be referred to."""
import uuid

from flask.views import MethodView
from flask_smorest import Blueprint, abort

from api.common import QUERY, count_limit, ndjson_doc, ndjson_response, page_response, session
from core import directory, geo
from schemas.args import ServiceListArgs
from schemas.hsds import ServiceListItemSchema, ServiceMinimalSchema, ServiceSchema, page_of

blp = Blueprint("services", __name__, url_prefix="/services", description="Services and their referral contact points.")

ServicePage = page_of(ServiceListItemSchema, "ServicePage", facets=True, full=(ServiceSchema, ServiceMinimalSchema))


def query_from(args: dict) -> directory.ServiceQuery:
    """The domain query a list request's arguments describe."""
    filters = directory.ServiceFilters(
        organization_ids=args["organization_id"],
        program_ids=args["program_id"],
        taxonomy_term_ids=args["taxonomy_term_id"],
        categories=args["category"],
        taxonomy_ids=args["taxonomy_id"],
        statuses=args["status"],
        modified_after=args.get("modified_after"),
        ages=args["age"] + [months / 12 for months in args["age_months"]],
        towns=args["town"],
        postcodes=args["postcode"],
        languages=args["language"],
        accepts_referrals=args.get("accepts_referrals"),
    )
    point = None
    if "lat" in args:
        point = geo.Place("point", args["lat"], args["lon"])
    elif args["postcode"] and (args.get("proximity") or args.get("sort") == "distance"):
        point = geo.zip_place(args["postcode"][0])
        if point is None:
            abort(422, message="Unknown Connecticut ZIP code.", errors={"query": {"postcode": ["Not a Connecticut ZIP code."]}})
    return directory.ServiceQuery(
        filters=filters,
        search=args.get("search"),
        point=point,
        proximity_m=args.get("proximity"),
        sort=args.get("sort"),
        facets=list(dict.fromkeys(args["facets"])),
    )


@blp.route("")
class Services(MethodView):
    @blp.arguments(ServiceListArgs, **QUERY)
    @blp.response(200, ServicePage)
    @blp.alt_response(200, **ndjson_doc(ServiceListItemSchema, "service"))
    @blp.alt_response(422, description="A query parameter is invalid or unknown.")
    def get(self, args):
        """List or search services.

        Active services by default. With `search`, services are ranked by relevance: words
        are stemmed ("inspections" finds "inspection"), everyday phrases are widened by a
        synonym table ("peeling paint" finds lead services), and typos are forgiven
        ("asthama"). Filters combine with AND; a filter repeated (`?program_id=a&program_id=b`)
        matches any of its values. A category filter also matches every category below it.
        `town` and `postcode` keep the services whose service area covers the place
        (statewide services cover every Connecticut town). With a point (`lat`+`lon`, or one
        `postcode`) and `proximity` (metres) or `sort=distance`, each result carries
        `distance` in metres to its nearest location. `facets=category,town,language,program`
        adds counts under `facets`, each respecting every other filter. With `full=true` each
        service is the full nested record. With `minimal=true` each service is its `id` and
        `last_modified` only, and a page holds up to 10,000 (every service, in one call, for a
        directory of that size). With `format=ndjson` every matching service is streamed as
        `application/x-ndjson`, one record a line, in the list's order, with no envelope and
        no paging. `total_items` is exact up to 10,000 matches (`total_items_exact: true`); a
        larger set is counted only to that bound, or to just past the page asked for, and
        comes with `total_items_exact: false`, `last_page: false` and at least one more page.
        """
        query = query_from(args)
        full, minimal = args["full"], args["minimal"]
        if args["format"] == "ndjson":
            records = directory.stream_services(session(), query, full, minimal)
            return ndjson_response(records, ServiceSchema() if full else None)
        page = directory.list_services(session(), query, args["page"], args["per_page"], full, minimal, count_limit())
        return page_response(page, ServiceSchema() if full else None)


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
