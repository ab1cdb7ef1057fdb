"""HL7 FHIR R4 (4.0.1) JSON under /fhir: the directory as HealthcareService, Organization and
Location; referrals as ServiceRequest and Task, created by a transaction Bundle.

Responses are `application/fhir+json`; errors are OperationOutcome resources. Referral
resources need the same API keys and scopes as /referrals, show the same referrals to the same
keys, write the same audit entries and carry `Cache-Control: no-store`.
"""

from __future__ import annotations

import re
import uuid
from typing import NoReturn
from urllib.parse import urlencode

from flask import current_app, g, request
from flask.views import MethodView
from flask_smorest import Blueprint, abort
from marshmallow import ValidationError
from werkzeug.exceptions import HTTPException

from api.auth import BEARER, require
from api.common import QUERY, session
from api.errors import STATUS_OF
from api.limits import is_keyed
from api.referrals import IDEMPOTENCY_KEY, IF_MATCH_DOC, if_match_version
from core import directory, fhir, json_patch, referrals
from core.errors import DomainError, Forbidden, InvalidData, InvalidTransition, NotFound
from core.paging import Page
from schemas.fhir import (
    FhirBundleSchema,
    FhirOperationOutcomeSchema,
    FhirResourceSchema,
    HealthcareServiceSearchArgs,
    TaskSearchArgs,
)
from schemas.referrals import ReferralIn, StatusChangeIn

blp = Blueprint(
    "fhir",
    __name__,
    url_prefix="/fhir",
    description="HL7 FHIR R4 (4.0.1), application/fhir+json: the directory, and referrals as ServiceRequest and Task.",
)

FHIR = {"content_type": fhir.MEDIA_TYPE}
JSON_PATCH_SCHEMA = {
    "type": "array",
    "minItems": 1,
    "items": {
        "type": "object",
        "required": ["op", "path"],
        "properties": {
            "op": {"type": "string", "enum": list(json_patch.OPERATIONS)},
            "path": {"type": "string"},
            "from": {"type": "string"},
            "value": {},
        },
    },
}
KEYED_ERRORS = ((401, "No key, or a key that is wrong or revoked."), (403, "The key lacks the scope."))


def fhir_response(body: dict, status: int = 200, headers: dict | None = None):
    response = current_app.response_class(current_app.json.dumps(body), status=status, mimetype=fhir.MEDIA_TYPE)
    for key, value in (headers or {}).items():
        response.headers[key] = value
    return response


def outcome_response(status: int, message: str, errors: dict | None = None, headers=None):
    return fhir_response(fhir.operation_outcome(status, message, errors), status, dict(headers or {}))


def base_url() -> str:
    return request.url_root.rstrip("/") + blp.url_prefix


def errors_documented(*codes: tuple[int, str], keyed: bool = False):
    """Document the OperationOutcome answers of an operation (and its bearer security)."""

    def decorator(view):
        for code, description in (KEYED_ERRORS if keyed else ()) + codes:
            view = blp.alt_response(code, schema=FhirOperationOutcomeSchema, description=description, **FHIR)(view)
        return blp.doc(security=BEARER)(view) if keyed else view

    return decorator


# ----------------------------------------------------------------------------- errors


@blp.errorhandler(HTTPException)
def http_error(exc: HTTPException):
    status = exc.code or 500
    data = getattr(exc, "data", None) or {}
    errors = data.get("messages") or data.get("errors") or {}
    message = data.get("message") or exc.description or ""
    if isinstance(errors, dict) and "query" in errors:  # search parameters (parsed with a 400 status)
        errors, message = errors["query"], "A search parameter is invalid or unknown; see the issues."
    headers = {}
    if status in (405, 429):  # Allow, Retry-After and the rate-limit headers
        headers = {
            k: v for k, v in exc.get_response().headers.items() if k.lower() not in ("content-type", "content-length")
        }
    headers.update(data.get("headers") or {})
    return outcome_response(status, message, errors, headers)


@blp.errorhandler(DomainError)
def domain_error(exc: DomainError):
    if isinstance(exc, fhir.InvalidResource):
        return outcome_response(400, exc.message, exc.errors)
    status = next((code for kind, code in STATUS_OF.items() if isinstance(exc, kind)), 400)
    errors = fhir.fhir_paths(exc.errors) if isinstance(exc, InvalidData) else exc.errors
    return outcome_response(status, exc.message, errors)


@blp.after_app_request
def fhir_errors_outside_views(response):
    """Errors under /fhir that no FHIR view raised (an unknown resource type, a method not
    allowed, an unexpected failure) come from the app's JSON envelope: answer them as an
    OperationOutcome too. The rest of the API keeps its envelope."""
    path = request.path
    if (path == blp.url_prefix or path.startswith(blp.url_prefix + "/")) and response.status_code >= 400:
        if response.mimetype == "application/json":
            body = response.get_json(silent=True) or {}
            outcome = outcome_response(
                response.status_code,
                body.get("message", ""),
                body.get("errors") if response.status_code != 500 else None,
            )
            for key, value in response.headers.items():
                if key.lower() not in ("content-type", "content-length"):
                    outcome.headers[key] = value
            return outcome
    return response


@blp.after_request
def no_store_for_referrals(response):
    if is_keyed():
        response.headers["Cache-Control"] = "no-store"
        response.headers["Pragma"] = "no-cache"
    return response


# ----------------------------------------------------------------------------- helpers


def page_links(page: Page, resource_type: str) -> dict[str, str]:
    """self, first, previous, next and last: the request's own parameters with `_page`."""
    params = [(key, value) for key, value in request.args.items(multi=True) if key != "_page"]

    def url(number: int) -> str:
        return f"{base_url()}/{resource_type}?{urlencode(params + [('_page', number)])}"

    links = {"self": url(page.page_number), "first": url(1)}
    if page.page_number > 1:
        links["previous"] = url(min(page.page_number - 1, page.total_pages))
    if page.page_number < page.total_pages:
        links["next"] = url(page.page_number + 1)
    links["last"] = url(page.total_pages)
    return links


# flask-smorest ships no types, so mypy cannot know that its abort() always raises.
def bad_parameter(name: str, message: str) -> NoReturn:  # type: ignore[misc]
    abort(400, message="A search parameter is invalid; see the issues.", errors={name: [message]})


def parse_dates(name: str, values: list[str]) -> list[fhir.DateBound]:
    try:
        return [fhir.parse_date(value) for value in values]
    except ValueError:
        bad_parameter(name, "Use a FHIR date with an optional prefix, e.g. gt2026-01-01T00:00:00Z.")


def parse_references(name: str, values: list[str], resource_type: str) -> list[list[uuid.UUID]]:
    try:
        return [[fhir.reference_id(part, resource_type) for part in value.split(",")] for value in values]
    except ValueError:
        bad_parameter(name, f"Use {resource_type}/<id>.")


def split_tokens(values: list[str]) -> list[list[tuple[str | None, str]]]:
    return [[fhir.split_token(part) for part in value.split(",") if part] for value in values]


def as_uuid(value: str) -> uuid.UUID:
    try:
        return uuid.UUID(value)
    except ValueError:
        raise NotFound("No resource of this type has this id.") from None


def maybe_uuid(value: str) -> uuid.UUID | None:
    try:
        return uuid.UUID(value.strip())
    except ValueError:
        return None


def referral_headers(referral) -> dict:
    return {
        "ETag": f'W/"{referral.version}"',
        "Last-Modified": referral.updated_at.strftime("%a, %d %b %Y %H:%M:%S GMT"),
    }


FHIR_VERSION_TAG = re.compile(r"(\d{1,9})")  # FHIR ETags: W/"<versionId>" (the weak form) or "<versionId>"


def expected_version() -> int | None:
    """The versionId that the request's `If-Match` names (None without one); not an entity tag: a 400."""
    return if_match_version(FHIR_VERSION_TAG, example='W/"3"')


def updated_task(referral_id: uuid.UUID, expected: int | None, incoming_of):
    """Move the referral as the Task that `incoming_of(current Task)` gives asks, as
    `POST /referrals/{id}/status` would (lifecycle, scopes, webhooks, audit), and answer the
    updated Task. The Task is read and compared under the referral's write lock."""
    referral = referrals.referral_for_change(session(), g.client, referral_id, expected)
    parts = fhir.referral_parts(session(), referral)
    current = fhir.task(referral, parts)
    move = fhir.task_move(current, incoming_of(current))
    try:
        data = StatusChangeIn().load(move)
    except ValidationError as exc:
        return outcome_response(422, "The Task has invalid values; see the issues.", fhir.task_paths(exc.messages_dict))
    try:
        referrals.move_referral(
            session(), g.client, referral, data["status"], data.get("reason"), data.get("outcome"), expected
        )
    except InvalidData as exc:
        raise InvalidData(exc.message, fhir.task_paths(exc.errors)) from None
    except (InvalidTransition, Forbidden) as exc:
        allowed = exc.errors.get("allowed", [])
        choice = (
            f"Next statuses this key may choose: {', '.join(allowed)}."
            if allowed
            else "This key may choose no next status."
        )
        return outcome_response(
            409 if isinstance(exc, InvalidTransition) else 403, exc.message, {"Task.status": [choice]}
        )
    session().commit()
    return fhir_response(
        fhir.task(referral, fhir.referral_parts(session(), referral)), headers=referral_headers(referral)
    )


# ----------------------------------------------------------------------------- capability


@blp.route("/metadata")
class Metadata(MethodView):
    @blp.response(200, FhirResourceSchema, **FHIR)
    def get(self):
        """The CapabilityStatement: the resources, interactions and search parameters served."""
        return fhir_response(fhir.capability_statement(base_url()))


# ----------------------------------------------------------------------------- directory


@blp.route("/HealthcareService")
class HealthcareServices(MethodView):
    @blp.arguments(HealthcareServiceSearchArgs(), error_status_code=400, **QUERY)
    @blp.response(200, FhirBundleSchema, **FHIR)
    @errors_documented((400, "A search parameter is invalid or unknown."))
    def get(self, args):
        """Search services as HealthcareService resources (a searchset Bundle).

        `name` (starts with; `name:contains`, `name:exact`), `service-category` (an OCCH
        category code, with every category below it), `service-type` (HL7 service-type code),
        `organization` (`Organization/<id>` of the providing program or organization),
        `active`, `_id`, `_lastUpdated` (`gt2026-01-01T00:00:00Z`; repeat for a range),
        `_count` (1 to 100). Comma-separated values are ORed; repeated parameters ANDed.
        Ordered by name; follow the Bundle's `next` link for more.
        """
        search = fhir.ServiceSearch(
            names=[("", v) for v in args["name"]]
            + [("contains", v) for v in args["name_contains"]]
            + [("exact", v) for v in args["name_exact"]],
            categories=split_tokens(args["service_category"]),
            types=split_tokens(args["service_type"]),
            organizations=parse_references("organization", args["organization"], "Organization"),
            ids=[[i for i in map(maybe_uuid, value.split(",")) if i] for value in args["_id"]],
            active=args.get("active"),
            last_updated=parse_dates("_lastUpdated", args["_lastUpdated"]),
        )
        page = fhir.search_services(session(), search, args["_page"], args["_count"])
        resources = [fhir.healthcare_service(service) for service in page.contents]
        return fhir_response(
            fhir.searchset(resources, page.total_items, base_url(), page_links(page, "HealthcareService"))
        )


@blp.route("/HealthcareService/<string:resource_id>")
class HealthcareServiceById(MethodView):
    @blp.response(200, FhirResourceSchema, **FHIR)
    @errors_documented((404, "No service has this id."))
    def get(self, resource_id: str):
        """Read a service as a HealthcareService: categories, HL7 service types, telecom
        (phones and referral contact points), providing Organization, locations, coverage
        area and referral methods."""
        service = directory.get_service(session(), as_uuid(resource_id))
        return fhir_response(fhir.healthcare_service(service))


@blp.route("/Organization/<string:resource_id>")
class OrganizationById(MethodView):
    @blp.response(200, FhirResourceSchema, **FHIR)
    @errors_documented((404, "No organization or program has this id."))
    def get(self, resource_id: str):
        """Read an Organization: an HSDS organization, or a program (a department `partOf`
        its organization, the owner of the referrals to its services)."""
        return fhir_response(fhir.organization_resource(session(), as_uuid(resource_id)))


@blp.route("/Location/<string:resource_id>")
class LocationById(MethodView):
    @blp.response(200, FhirResourceSchema, **FHIR)
    @errors_documented((404, "No location has this id."))
    def get(self, resource_id: str):
        """Read a Location: address, position (when known) and managing Organization."""
        return fhir_response(fhir.location(fhir.get_location(session(), as_uuid(resource_id))))


# ----------------------------------------------------------------------------- referrals


@blp.route("/ServiceRequest/<string:resource_id>")
class ServiceRequestById(MethodView):
    @errors_documented((404, "No referral with this id is visible to this key."), keyed=True)
    @require("referrals:submit", "referrals:manage")
    @blp.response(200, FhirResourceSchema, headers={"ETag": {"schema": {"type": "string"}}}, **FHIR)
    def get(self, resource_id: str):
        """Read a referral as a ServiceRequest.

        The child (Patient), guardian (RelatedPerson), consent (Consent) and referrer
        (PractitionerRole) are contained resources; `performer` names the HealthcareService
        and the receiving Organization. Same keys and visibility as `GET /referrals/{id}`.
        """
        referral = referrals.get_referral(session(), g.client, as_uuid(resource_id))
        body = fhir.service_request(referral, fhir.referral_parts(session(), referral))
        session().commit()  # the audit entry of this read
        return fhir_response(body, headers=referral_headers(referral))


@blp.route("/Task/<string:resource_id>")
class TaskById(MethodView):
    @errors_documented((404, "No referral with this id is visible to this key."), keyed=True)
    @require("referrals:submit", "referrals:manage")
    @blp.response(200, FhirResourceSchema, headers={"ETag": {"schema": {"type": "string"}}}, **FHIR)
    def get(self, resource_id: str):
        """Read a referral as a Task (SDOH Clinical Care style).

        `status` is the referral status, `statusReason` its reason, `businessStatus` a plain
        description, `output` the outcome once completed; `focus` is the ServiceRequest,
        `owner` the receiving program's Organization, `requester` the sending client.
        """
        referral = referrals.get_referral(session(), g.client, as_uuid(resource_id))
        body = fhir.task(referral, fhir.referral_parts(session(), referral))
        session().commit()
        return fhir_response(body, headers=referral_headers(referral))

    @errors_documented(
        (
            400,
            "Not a Task with the id of the URL, the body is not well-formed JSON, or If-Match is not one entity tag.",
        ),
        (404, "No referral with this id is visible to this key."),
        (409, "The lifecycle does not allow this move; the issues list the next statuses this key may choose."),
        (412, "If-Match names an older version of the Task."),
        (
            422,
            "A field other than status, statusReason and output differs from the current Task, a value is "
            "invalid, or a reason is missing where one is required.",
        ),
        keyed=True,
    )
    @require("referrals:submit", "referrals:manage")
    @blp.response(200, FhirResourceSchema, headers={"ETag": {"schema": {"type": "string"}}}, **FHIR)
    @blp.doc(
        parameters=[IF_MATCH_DOC],
        requestBody={"required": True, "content": {fhir.MEDIA_TYPE: {"schema": FhirResourceSchema}}},
    )
    def put(self, resource_id: str):
        """Update a Task: move its referral through the lifecycle.

        Send the Task as read with `status` changed, and `statusReason` (its `text`, required
        for rejected, on-hold, failed, cancelled and entered-in-error) and `output` (one, the
        outcome as `valueString`, on completed) as they should be. Any other element that
        differs from the current Task is a 422; `meta` and `lastModified` are the server's.
        It is the same move as `POST /referrals/{id}/status`: same lifecycle (409 when not
        allowed), same sides (the receiving program moves it forward, the sender may cancel),
        webhooks and audit. `If-Match: W/"<versionId>"` (the ETag of your read) makes a stale
        update a 412. Answers the updated Task.
        """
        referral_id = as_uuid(resource_id)
        expected = expected_version()
        resource = fhir.check_task_resource(request.get_json(silent=True), resource_id)
        return updated_task(referral_id, expected, lambda current: resource)

    @errors_documented(
        (400, "Not a JSON Patch, the body is not well-formed JSON, or If-Match is not one entity tag."),
        (404, "No referral with this id is visible to this key."),
        (
            409,
            "The lifecycle does not allow this move (the issues list the next statuses), or a test operation failed.",
        ),
        (412, "If-Match names an older version of the Task."),
        (415, "The body is not application/json-patch+json."),
        (
            422,
            "An operation writes elsewhere than /status, /statusReason or /output, names nothing in the Task, "
            "or gives an invalid value; or a reason is missing where one is required.",
        ),
        keyed=True,
    )
    @require("referrals:submit", "referrals:manage")
    @blp.response(200, FhirResourceSchema, headers={"ETag": {"schema": {"type": "string"}}}, **FHIR)
    @blp.doc(
        parameters=[IF_MATCH_DOC],
        requestBody={"required": True, "content": {fhir.PATCH_MEDIA_TYPE: {"schema": JSON_PATCH_SCHEMA}}},
    )
    def patch(self, resource_id: str):
        """Patch a Task (JSON Patch, RFC 6902): move its referral through the lifecycle.

        `Content-Type: application/json-patch+json`; operations may write `/status`,
        `/statusReason` and `/output` only (a `test` may read anywhere), e.g.
        `[{"op": "replace", "path": "/status", "value": "on-hold"}, {"op": "add", "path":
        "/statusReason", "value": {"text": "Family travelling"}}]`. The patched Task is then
        the same update as a PUT of it, with the same checks and answers.
        """
        referral_id = as_uuid(resource_id)
        expected = expected_version()
        if request.mimetype != fhir.PATCH_MEDIA_TYPE:
            abort(415, message=f"Send a JSON Patch, with Content-Type: {fhir.PATCH_MEDIA_TYPE}.")
        operations = request.get_json(silent=True)
        json_patch.check(operations)
        return updated_task(referral_id, expected, lambda current: fhir.patch_task(current, operations))


@blp.route("/Task")
class Tasks(MethodView):
    @errors_documented((400, "A search parameter is invalid, unknown or not supported."), keyed=True)
    @require("referrals:submit", "referrals:manage")
    @blp.arguments(TaskSearchArgs(), error_status_code=400, **QUERY)
    @blp.response(200, FhirBundleSchema, **FHIR)
    def get(self, args):
        """Poll the referrals this key may see, as Tasks (a searchset Bundle), oldest change first.

        `owner=Organization/<program id>`, `status=requested,accepted`, and
        `_lastUpdated=gt<the lastModified of the last Task you saw>` (also `ge`, `sa`).
        """
        owners = [i for ids in parse_references("owner", args["owner"], "Organization") for i in ids]
        try:
            statuses = fhir.statuses_from(args["status"])
        except ValueError as exc:
            bad_parameter("status", str(exc))
        try:
            since = fhir.latest_change_after(parse_dates("_lastUpdated", args["_lastUpdated"]))
        except ValueError as exc:
            bad_parameter("_lastUpdated", str(exc))
        search = fhir.TaskSearch(owners=owners, statuses=statuses, changed_after=since)
        page, resources = fhir.search_tasks(session(), g.client, search, args["_page"], args["_count"])
        session().commit()  # the audit entries of this read
        return fhir_response(fhir.searchset(resources, page.total_items, base_url(), page_links(page, "Task")))


@blp.route("")
class Transaction(MethodView):
    @errors_documented(
        (400, "Not a transaction Bundle of ServiceRequest, Patient, RelatedPerson, Consent and Task."),
        (409, "The idempotency key was used with a different referral."),
        (
            422,
            "A value is invalid, consent was not obtained, the service does not take referrals, "
            "or the child is outside its age range.",
        ),
        (428, "Neither an Idempotency-Key header nor the ServiceRequest entry's ifNoneExist was sent."),
        keyed=True,
    )
    @require("referrals:submit")
    @blp.response(200, FhirBundleSchema, **FHIR)
    @blp.doc(
        parameters=[
            {
                "in": "header",
                "name": "Idempotency-Key",
                "required": False,
                "schema": {"type": "string", "maxLength": 255},
            }
        ],
        requestBody={"required": True, "content": {fhir.MEDIA_TYPE: {"schema": FhirBundleSchema}}},
    )
    def post(self):
        """Create a referral from a transaction Bundle (ServiceRequest, Patient, RelatedPerson,
        Consent, Task).

        It becomes the same referral `POST /referrals` makes, with the same validation. For
        idempotency send an `Idempotency-Key` header, or `request.ifNoneExist` on the
        ServiceRequest entry: a retry with the same key and Bundle returns the same referral
        (entry status `200 OK`), the same key with another referral is a 409. Answers a
        transaction-response Bundle holding the ServiceRequest and the Task.
        """
        incoming = fhir.referral_from_bundle(request.get_json(silent=True))
        key = request.headers.get("Idempotency-Key") or incoming.if_none_exist or ""
        if not IDEMPOTENCY_KEY.fullmatch(key):
            abort(
                428,
                message="Send an Idempotency-Key header, or ifNoneExist on the ServiceRequest entry, "
                "of 1 to 255 printable characters.",
            )
        try:
            data = ReferralIn().load(incoming.data)
        except ValidationError as exc:
            return outcome_response(
                422, "The referral has invalid values; see the issues.", fhir.fhir_paths(exc.messages_dict)
            )
        submitted = referrals.submit_referral(session(), g.client, data, key)
        referral = submitted.referral
        body = fhir.transaction_response(
            incoming.entries, referral, fhir.referral_parts(session(), referral), submitted.created
        )
        return fhir_response(body)
