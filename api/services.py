"""Services: the things a family can be referred to."""

import uuid

from flask import current_app, g, request
from flask.views import MethodView
from flask_smorest import Blueprint, abort
from marshmallow import Schema, fields, validate

from api.auth import keyed
from api.common import QUERY, count_limit, ndjson_doc, ndjson_response, page_response, requested_language, session
from core import directory, editing
from models.vocab import CAPACITY_STATUSES
from schemas.args import ServiceListArgs
from schemas.hsds import ServiceListItemSchema, ServiceMinimalSchema, ServiceSchema, page_of

blp = Blueprint("services", __name__, url_prefix="/services", description="Services and their referral contact points.")

ServicePage = page_of(
    ServiceListItemSchema, "ServicePage", facets=True, full=(ServiceSchema, ServiceMinimalSchema), guidance=True
)


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
        verified_before=args.get("verified_before"),
        accepting_new=args.get("accepting_new"),
        capacity_stale_days=current_app.config["CAPACITY_STALE_DAYS"],
        accepts_referrals=args.get("accepts_referrals"),
    )
    measures = bool(args.get("proximity") or args.get("sort") == "distance")
    point = directory.search_point(args.get("lat"), args.get("lon"), args["postcode"], measures)
    directory.check_filters(session(), filters)
    return directory.ServiceQuery(
        filters=filters,
        search=args.get("search"),
        point=point,
        proximity_m=args.get("proximity"),
        sort=args.get("sort"),
        facets=list(dict.fromkeys(args["facets"])),
        language=requested_language(args),
    )


WRITERS = (editing.WRITE, editing.ADMIN)
WRITE_ERRORS = (
    (404, "No service has this id."),
    (412, "If-Match names an older version of the record: read it again."),
    (422, "The record breaks a rule; `errors` names each field at fault. Nothing was changed."),
    (428, "No If-Match: send the record's ETag."),
)
IF_MATCH = {
    "in": "header",
    "name": "If-Match",
    "required": True,
    "schema": {"type": "string"},
    "description": "The record's ETag, as its last read answered it.",
}
ETAG = {"ETag": {"description": "The record's new version.", "schema": {"type": "string"}}}
RECORD_BODY = {"required": True, "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Service"}}}}
PATCH_BODY = {"required": True, "content": {"application/merge-patch+json": {"schema": {"type": "object"}}}}


class HistoryChangeSchema(Schema):
    field = fields.String(required=True)
    from_ = fields.Raw(data_key="from", attribute="from", allow_none=True)
    to = fields.Raw(allow_none=True)


class HistoryEntrySchema(Schema):
    id = fields.UUID(required=True)
    action = fields.String(
        required=True, metadata={"enum": ["create", "replace", "patch", "delete", "verify", "capacity"]}
    )
    at = fields.AwareDateTime(required=True)
    client_id = fields.UUID(allow_none=True)
    client_name = fields.String(required=True, metadata={"description": "The API client that wrote."})
    note = fields.String(allow_none=True)
    changes = fields.List(fields.Nested(HistoryChangeSchema))


class VerifyIn(Schema):
    note = fields.String(validate=validate.Length(max=2000))


class CapacityIn(Schema):
    status = fields.String(required=True, validate=validate.OneOf(CAPACITY_STATUSES))
    available = fields.Float(validate=validate.Range(min=0), allow_none=True)
    maximum = fields.Float(validate=validate.Range(min=0), allow_none=True)
    unit = fields.String(validate=validate.Length(min=1, max=100), allow_none=True)
    expected_wait_days = fields.Integer(validate=validate.Range(min=0, max=3650), allow_none=True)
    description = fields.String(validate=validate.Length(max=2000), allow_none=True)


@blp.route("")
class Services(MethodView):
    @blp.arguments(ServiceListArgs(), **QUERY)
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

    @keyed(blp, *WRITERS, errors=((409, "A service with this id exists."),) + WRITE_ERRORS[2:3])
    @blp.doc(requestBody=RECORD_BODY)
    @blp.response(201, ServiceSchema, headers=ETAG)
    def post(self):
        """Create a service from its full HSDS record (program staff).

        The same record `PUT` takes, checked by the rules of `flask hsds import`; `id` is made
        when absent. A program key creates services of its own programs only.
        """
        service = editing.create_service(session(), g.client, json_body(), dump)
        record, _, headers = written(service)
        headers["Location"] = f"{request.root_path}/services/{service.id}"
        return record, 201, headers


@blp.route("/<uuid:service_id>")
class ServiceById(MethodView):
    @blp.response(200, ServiceSchema)
    @blp.alt_response(404, description="No service has this id.")
    def get(self, service_id: uuid.UUID):
        """Get a service, fully nested, with its referral contact points.

        `referral_contact_points` says who to contact to refer a child to this service and
        how: channel, value, the audience served and the purpose.
        """
        service = directory.get_service(session(), service_id)
        g.record_etag = editing.record_etag(dump(service))
        return service

    @keyed(blp, *WRITERS, errors=WRITE_ERRORS)
    @blp.doc(requestBody=RECORD_BODY, parameters=[IF_MATCH])
    @blp.response(200, ServiceSchema, headers=ETAG)
    def put(self, service_id: uuid.UUID):
        """Replace a service with its full record (program staff).

        The body is the full HSDS record, the shape `GET` returns and `flask hsds import` reads,
        checked by the same rules; nested records it no longer lists are removed. Fields the
        server keeps (`last_modified`, `assured_date`, `assurer_email`, `capacities`, the nested
        `organization` and `program`) are ignored. Send the record's `ETag` as `If-Match`.
        """
        service = editing.replace_service(session(), g.client, service_id, json_body(), if_match(), dump)
        return written(service)

    @keyed(blp, *WRITERS, errors=WRITE_ERRORS)
    @blp.doc(requestBody=PATCH_BODY, parameters=[IF_MATCH])
    @blp.response(200, ServiceSchema, headers=ETAG)
    def patch(self, service_id: uuid.UUID):
        """Change some fields of a service: a JSON Merge Patch (RFC 7396) of its record.

        `Content-Type: application/merge-patch+json`. A field set to `null` is removed; a list
        given replaces the list. E.g. `{"accepts_referrals": true}` turns on referrals.
        """
        if request.mimetype != "application/merge-patch+json":
            abort(415, message="Send a merge patch with Content-Type: application/merge-patch+json.")
        service = editing.patch_service(session(), g.client, service_id, json_body(), if_match(), dump)
        return written(service)

    @keyed(blp, *WRITERS, errors=WRITE_ERRORS + ((409, "The service has open referrals; the message says how many."),))
    @blp.doc(parameters=[IF_MATCH])
    @blp.response(200, ServiceSchema, headers=ETAG)
    def delete(self, service_id: uuid.UUID):
        """Retire a service: mark it inactive (its record stays; lists leave it out by default).

        Refused with 409 while referrals to it are open.
        """
        service = editing.retire_service(session(), g.client, service_id, if_match(), dump)
        return written(service)


def dump(service) -> dict:
    return ServiceSchema().dump(service)


def json_body():
    body = request.get_json(force=True, silent=True)
    if body is None:
        abort(400, message="The body is not well-formed JSON.")
    return body


def if_match() -> list[str] | None:
    if request.headers.get("If-Match") is None:
        return None
    if request.if_match.star_tag:
        return ["*"]
    # Strong tags only; a header werkzeug reads oddly (empty tags) yields no usable tag,
    # which the write then refuses as stale (412), never a 500.
    return sorted(str(tag) for tag in request.if_match.as_set() if tag)


def written(service, status: int = 200):
    """Commit, then answer the record as a read would, with its new ETag."""
    session().commit()
    record = directory.get_service(session(), service.id)
    return record, status, {"ETag": f'"{editing.record_etag(dump(record))}"', "Cache-Control": "no-store"}


@blp.route("/<uuid:service_id>/history")
class ServiceHistory(MethodView):
    @keyed(blp, *WRITERS, errors=((404, "No service has this id."),))
    @blp.response(200, HistoryEntrySchema(many=True))
    def get(self, service_id: uuid.UUID):
        """Every write of a service through the API, newest first: who, when, each field from and to."""
        return editing.history(session(), service_id)


@blp.route("/<uuid:service_id>/verify")
class ServiceVerify(MethodView):
    @keyed(blp, *WRITERS, errors=WRITE_ERRORS)
    @blp.arguments(VerifyIn)
    @blp.doc(parameters=[IF_MATCH])
    @blp.response(200, ServiceSchema, headers=ETAG)
    def post(self, data, service_id: uuid.UUID):
        """Record that a person checked the whole record today (program staff).

        Sets HSDS `assured_date` (today) and `assurer_email` (the key's contact e-mail), with
        an optional `note` in the history; changes nothing else.
        """
        service = editing.verify_service(session(), g.client, service_id, if_match(), data.get("note"), dump)
        return written(service)


@blp.route("/<uuid:service_id>/capacity")
class ServiceCapacity(MethodView):
    @keyed(blp, *WRITERS, errors=WRITE_ERRORS)
    @blp.arguments(CapacityIn)
    @blp.doc(parameters=[IF_MATCH])
    @blp.response(200, ServiceSchema, headers=ETAG)
    def put(self, data, service_id: uuid.UUID):
        """Set a service's availability (program staff).

        `status` is an SDOH capacity code: `capacity`, `no-capacity`, `waitlist` or
        `additional-assessment-required`; optionally `available` and `maximum` counts in a
        `unit` (HSDS 3.1 service_capacity) and `expected_wait_days`. Served as `capacities`;
        after CAPACITY_STALE_DAYS without an update the status is served as `unknown`. At
        `no-capacity` referrals are refused; at `waitlist` they are accepted onto the waitlist.
        """
        service = editing.set_capacity(session(), g.client, service_id, if_match(), data, dump)
        return written(service)
