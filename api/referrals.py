"""Referrals: partner agencies refer a child to a service and follow it to the end.

Every referral route needs an API key. Responses carry `Cache-Control: no-store` and never
appear in logs; CORS is allowed only from the origins in `CORS_ORIGINS`.
"""

from __future__ import annotations

import json
import re
import uuid

from flask import g, jsonify, request, url_for
from flask.views import MethodView
from flask_smorest import Blueprint, abort

from api.auth import documented, require
from api.common import QUERY, page_response, session
from core import referrals
from schemas.hsds import page_of
from schemas.referrals import (
    ReferralEventOut,
    ReferralIn,
    ReferralListArgs,
    ReferralOut,
    StatusChangeIn,
)

blp = Blueprint("referrals", __name__, url_prefix="/referrals", description="Closed-loop referrals (API key required).")

ReferralPage = page_of(ReferralOut, "ReferralPage")
IDEMPOTENCY_KEY = re.compile(r"^[\x21-\x7e]{1,255}$")


@blp.after_request
def no_store(response):
    response.headers["Cache-Control"] = "no-store"
    response.headers["Pragma"] = "no-cache"
    return response


def etag(referral) -> str:
    return f'"v{referral.version}"'


def referral_response(referral, status: int = 200):
    response = jsonify(ReferralOut().dump(referral))
    response.status_code = status
    response.headers["ETag"] = etag(referral)
    response.headers["Location"] = url_for("referrals.ReferralById", referral_id=referral.id)
    return response


# An entity tag (RFC 9110): optionally weak, then any visible characters but `"` in quotes.
ENTITY_TAG = re.compile(r'(W/)?"([\x21\x23-\x7e\x80-\xff]*)"')
REST_VERSION = re.compile(r"v(\d{1,9})")


def if_match_version(version_tag: re.Pattern = REST_VERSION, example: str = '"v3"') -> int | None:
    """The version the request's `If-Match` names: None without the header (or an empty one) or with `*`; -1
    for an entity tag that names no version (it can never match: a 412). A header that is not
    one entity tag is a 400. Weak tags (`W/"..."`) are compared like strong ones: the version
    counter names one state of the referral either way."""
    header = request.headers.get("If-Match")
    if header is None or header.strip(" \t") in ("", "*"):  # an empty header is as if not sent
        return None
    tag = ENTITY_TAG.fullmatch(header.strip(" \t"))
    if tag is None:
        abort(
            400,
            message=f"If-Match must be one entity tag, such as {example} (the ETag of your last read), or *.",
            errors={"If-Match": ["Not an entity tag."]},
        )
    assert tag is not None  # abort raised (flask_smorest does not type it as NoReturn)
    version = version_tag.fullmatch(tag.group(2))
    return int(version.group(1)) if version else -1


# The If-Match header as the OpenAPI document describes it.
IF_MATCH_DOC = {
    "in": "header",
    "name": "If-Match",
    "required": False,
    "description": "The ETag of your last read (or *): a change from an older version is a 412.",
    "schema": {"type": "string", "pattern": r'^[ \t]*(\*|(W/)?"[\x21\x23-\x7e]*")[ \t]*$'},
}


def expected_version() -> int | None:
    """The version the `If-Match` of a /referrals request names (its ETags are `"v<n>"`)."""
    return if_match_version(REST_VERSION)


@blp.route("")
class Referrals(MethodView):
    @documented(blp, (422, "A query parameter is invalid or unknown."))
    @require("referrals:submit", "referrals:manage")
    @blp.arguments(ReferralListArgs(), **QUERY)
    @blp.response(200, ReferralPage)
    def get(self, args):
        """List the referrals this key may see, oldest change first.

        Poll with `updated_since` (the `updated_at` of the last referral you saw) to get what
        changed since. Filter by `status` and `service_id` (repeat to OR).
        """
        page = referrals.list_referrals(
            session(),
            g.client,
            args["status"],
            args["service_id"],
            args.get("updated_since"),
            args["page"],
            args["per_page"],
        )
        response = page_response(page, ReferralOut())
        session().commit()  # the audit entries of this read
        return response

    @documented(
        blp,
        (409, "The Idempotency-Key was used with a different body."),
        (
            422,
            "A field is invalid or unknown, the service does not take referrals, "
            "or the child is outside its age range.",
        ),
        (428, "The Idempotency-Key header is missing or malformed."),
    )
    @require("referrals:submit")
    @blp.arguments(ReferralIn)
    @blp.response(
        201, ReferralOut, headers={"Location": {"schema": {"type": "string"}}, "ETag": {"schema": {"type": "string"}}}
    )
    @blp.doc(
        parameters=[
            {
                "in": "header",
                "name": "Idempotency-Key",
                "required": True,
                "schema": {"type": "string", "maxLength": 255},
            }
        ]
    )
    def post(self, data):
        """Refer a child to a service.

        Send an `Idempotency-Key` header (any unique string, e.g. a UUID): a retry with the
        same key and body returns the same referral and creates nothing; the same key with
        another body is a 409. The service must be active and accept referrals, and the child
        must be within its age range; a service at `no-capacity` refuses it (422). At `waitlist`
        the answer carries `service_capacity: "waitlist"`. Answers 201 with the referral and its `Location`.
        """
        key = request.headers.get("Idempotency-Key", "")
        if not IDEMPOTENCY_KEY.fullmatch(key):
            abort(428, message="Send an Idempotency-Key header of 1 to 255 printable characters.")
        submitted = referrals.submit_referral(session(), g.client, data, key)
        response = referral_response(submitted.referral, 201)
        from core import editing
        from models import Service

        capacity = editing.capacity_status(session().get_one(Service, submitted.referral.service_id))
        if capacity == "waitlist":
            body = response.get_json()
            body["service_capacity"] = "waitlist"
            body["message"] = "The service has a waitlist: the referral is accepted onto it."
            response.set_data(json.dumps(body))
        return response


@blp.route("/<uuid:referral_id>")
class ReferralById(MethodView):
    @documented(blp, (404, "No referral with this id is visible to this key."))
    @require("referrals:submit", "referrals:manage")
    @blp.response(200, ReferralOut, headers={"ETag": {"schema": {"type": "string"}}})
    def get(self, referral_id: uuid.UUID):
        """Get a referral, with the child, guardian, consent and referrer.

        The `ETag` names its version: send it back as `If-Match` when changing its status.
        """
        referral = referrals.get_referral(session(), g.client, referral_id)
        response = referral_response(referral)
        session().commit()
        return response


@blp.route("/<uuid:referral_id>/status")
class ReferralStatus(MethodView):
    @documented(
        blp,
        (404, "No referral with this id is visible to this key."),
        (409, "The lifecycle does not allow this move; `errors.allowed` lists the next statuses."),
        (400, "The body is not well-formed JSON, or If-Match is not one entity tag."),
        (412, "If-Match names an older version of the referral."),
        (422, "A field is invalid, or a reason is missing where one is required."),
    )
    @require("referrals:submit", "referrals:manage")
    @blp.arguments(StatusChangeIn)
    @blp.response(200, ReferralOut, headers={"ETag": {"schema": {"type": "string"}}})
    @blp.doc(parameters=[IF_MATCH_DOC])
    def post(self, data, referral_id: uuid.UUID):
        """Move a referral through its lifecycle (FHIR Task status codes).

        requested -> accepted, rejected, cancelled; accepted -> in-progress, on-hold,
        completed, failed, cancelled; in-progress <-> on-hold, and on to completed, failed,
        cancelled; any open status -> entered-in-error (sender only). The receiving program
        moves it forward; the sender may cancel. A `reason` is required for rejected,
        on-hold, failed, cancelled and entered-in-error; an `outcome` may be recorded on
        completed.
        """
        referral = referrals.transition_referral(
            session(),
            g.client,
            referral_id,
            data["status"],
            data.get("reason"),
            data.get("outcome"),
            expected_version(),
        )
        session().commit()
        return referral_response(referral)


@blp.route("/<uuid:referral_id>/events")
class ReferralEvents(MethodView):
    @documented(blp, (404, "No referral with this id is visible to this key."))
    @require("referrals:submit", "referrals:manage")
    @blp.response(200, ReferralEventOut(many=True))
    def get(self, referral_id: uuid.UUID):
        """Every change of a referral: actor, time, from, to, reason and outcome."""
        events = referrals.referral_events(session(), g.client, referral_id)
        response = jsonify(ReferralEventOut(many=True).dump(events))
        session().commit()
        return response
