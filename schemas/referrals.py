"""Referral requests and responses, webhook registrations. Unknown fields are rejected."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, date, datetime, timedelta
from typing import Any

from marshmallow import Schema, ValidationError, fields, post_dump, validate, validates, validates_schema

from models.vocab import (
    CONSENT_METHODS,
    CONTACT_PREFERENCES,
    GUARDIAN_RELATIONSHIPS,
    REFERRAL_STATUSES,
    URGENCIES,
    WEBHOOK_EVENTS,
)
from schemas.text import LanguageTag, SafeDateTime, SafeEmail, SafeText, SafeURL, StrictBoolean, must_hold_a_letter

PHONE = validate.Regexp(r"^\+?[0-9 ().-]{7,20}$", error="Not a valid phone number.")
NAME: list[Callable[[Any], Any]] = [validate.Length(min=1, max=100), must_hold_a_letter]
ZIP = validate.Regexp(r"^\d{5}(-\d{4})?$", error="Use a 5-digit ZIP code.")
MAX_REASON = 2000
# Consent cannot be obtained in the future: a sender's clock may run this far ahead of ours.
CONSENT_CLOCK_SKEW = timedelta(minutes=5)


class ChildIn(Schema):
    given_name = SafeText(required=True, validate=NAME)
    family_name = SafeText(required=True, validate=NAME)
    birth_date = fields.Date(required=True)
    town = SafeText(validate=validate.Length(min=1, max=100))
    postcode = SafeText(validate=ZIP)

    @validates("birth_date")
    def not_in_future(self, value: date, **kwargs):
        if value > date.today():
            raise ValidationError("The birth date is in the future.")
        if value.year < 1900:
            raise ValidationError("The birth date is too far in the past.")

    @validates_schema
    def town_or_postcode(self, data, **kwargs):
        if not data.get("town") and not data.get("postcode"):
            raise ValidationError("Give the child's town or postcode.", "town")


class GuardianIn(Schema):
    name = SafeText(required=True, validate=[validate.Length(min=1, max=200), must_hold_a_letter])
    relationship = SafeText(required=True, validate=validate.OneOf(GUARDIAN_RELATIONSHIPS))
    phone = SafeText(validate=PHONE)
    email = SafeEmail(validate=validate.Length(max=254))
    preferred_language = LanguageTag(
        metadata={
            "description": "A BCP 47 tag, kept as its language (`es-US`: `es`), as FHIR's communication.language."
        }
    )
    contact_preference = SafeText(required=True, validate=validate.OneOf(CONTACT_PREFERENCES))
    may_leave_message = StrictBoolean(required=True)

    @validates_schema
    def reachable(self, data, **kwargs):
        if not data.get("phone") and not data.get("email"):
            raise ValidationError("Give a phone number or an e-mail address.", "phone")
        preference = data.get("contact_preference")
        if preference in ("phone", "text") and not data.get("phone"):
            raise ValidationError("A phone number is needed for this contact preference.", "phone")
        if preference == "email" and not data.get("email"):
            raise ValidationError("An e-mail address is needed for this contact preference.", "email")


class ConsentIn(Schema):
    obtained = StrictBoolean(
        required=True, metadata={"enum": [True], "description": "Must be true: no referral without consent."}
    )
    obtained_by = SafeText(required=True, validate=validate.Length(min=1, max=200))
    relationship = SafeText(required=True, validate=validate.OneOf(GUARDIAN_RELATIONSHIPS + ("self",)))
    obtained_at = SafeDateTime(required=True)
    method = SafeText(required=True, validate=validate.OneOf(CONSENT_METHODS))

    @validates("obtained")
    def must_be_obtained(self, value: bool, **kwargs):
        if not value:
            raise ValidationError("A referral needs the family's consent.")

    @validates("obtained_at")
    def not_later_than_now(self, value: datetime, **kwargs):
        if value > datetime.now(UTC) + CONSENT_CLOCK_SKEW:
            raise ValidationError("Consent cannot be obtained in the future.")


class ReferrerIn(Schema):
    name = SafeText(required=True, validate=validate.Length(min=1, max=200))
    organization = SafeText(required=True, validate=validate.Length(min=1, max=200))
    phone = SafeText(validate=PHONE)
    email = SafeEmail(validate=validate.Length(max=254))


class ReferralIn(Schema):
    service_id = fields.UUID(required=True)
    child = fields.Nested(ChildIn, required=True)
    guardian = fields.Nested(GuardianIn, required=True)
    consent = fields.Nested(ConsentIn, required=True)
    reason = SafeText(required=True, validate=validate.Length(min=1, max=MAX_REASON))
    urgency = SafeText(
        load_default="routine",
        validate=validate.OneOf(URGENCIES),
        metadata={
            "description": "How soon the program should act; "
            "`routine` when left out (as FHIR's ServiceRequest.priority)."
        },
    )
    referrer = fields.Nested(ReferrerIn, required=True)


class ChildOut(Schema):
    given_name = SafeText(attribute="child_given_name")
    family_name = SafeText(attribute="child_family_name")
    birth_date = fields.Date(attribute="child_birth_date")
    town = SafeText(attribute="child_town")
    postcode = SafeText(attribute="child_postcode")


class GuardianOut(Schema):
    name = SafeText(attribute="guardian_name")
    relationship = SafeText(attribute="guardian_relationship")
    phone = SafeText(attribute="guardian_phone")
    email = SafeText(attribute="guardian_email")
    preferred_language = SafeText(attribute="guardian_preferred_language")
    contact_preference = SafeText(attribute="guardian_contact_preference")
    may_leave_message = fields.Boolean(attribute="guardian_may_leave_message")


class ConsentOut(Schema):
    obtained = fields.Boolean(attribute="consent_obtained")
    obtained_by = SafeText(attribute="consent_obtained_by")
    relationship = SafeText(attribute="consent_relationship")
    obtained_at = fields.DateTime(attribute="consent_obtained_at", format="iso")
    method = SafeText(attribute="consent_method")


class ReferrerOut(Schema):
    name = SafeText(attribute="referrer_name")
    organization = SafeText(attribute="referrer_organization")
    phone = SafeText(attribute="referrer_phone")
    email = SafeText(attribute="referrer_email")


def _without_nulls(data: dict) -> dict:
    """Empty fields are left out of a referral, never `null` (as in the directory)."""
    return {
        name: _without_nulls(value) if isinstance(value, dict) else value
        for name, value in data.items()
        if value is not None
    }


class ReferralOut(Schema):
    """A referral. Empty fields are left out, never `null`."""

    id = fields.UUID(required=True)
    service_id = fields.UUID(required=True)
    program_id = fields.UUID()
    status = SafeText(required=True, metadata={"enum": list(REFERRAL_STATUSES)})
    status_reason = SafeText()
    outcome = SafeText()
    urgency = SafeText()
    reason = SafeText()
    version = fields.Integer(metadata={"description": "Increases with every change; the ETag is derived from it."})
    created_at = fields.DateTime(format="iso")
    updated_at = fields.DateTime(format="iso")
    child = fields.Method("_child")
    guardian = fields.Method("_guardian")
    consent = fields.Method("_consent")
    referrer = fields.Method("_referrer")
    erased = fields.Function(
        lambda r: r.erased_at is not None,
        metadata={"description": "True once the family's data was erased: the personal fields are then absent."},
    )
    erased_at = fields.DateTime(
        format="iso", metadata={"description": "When the family's data was erased (absent until then)."}
    )

    @post_dump(pass_original=True)
    def _without_erased_fields(self, data, original, **kwargs):
        if original.erased_at is not None:
            for name in ("child", "guardian", "consent", "referrer", "reason", "status_reason", "outcome"):
                data.pop(name, None)
        return _without_nulls(data)

    def _child(self, r):
        return ChildOut().dump(r)

    def _guardian(self, r):
        return GuardianOut().dump(r)

    def _consent(self, r):
        return ConsentOut().dump(r)

    def _referrer(self, r):
        return ReferrerOut().dump(r)


class StatusChangeIn(Schema):
    status = SafeText(required=True, validate=validate.OneOf(REFERRAL_STATUSES))
    reason = SafeText(validate=validate.Length(min=1, max=MAX_REASON))
    outcome = SafeText(validate=validate.Length(min=1, max=MAX_REASON))


class ReferralEventOut(Schema):
    id = fields.UUID(required=True)
    sequence = fields.Integer()
    type = fields.String(metadata={"enum": list(WEBHOOK_EVENTS)})
    actor = fields.Function(
        lambda e: {"client_id": str(e.actor_client_id), "name": e.actor.name} if e.actor is not None else None,
        metadata={"description": "The client that made the change; null for the operator (an erasure)."},
    )
    from_status = fields.String(allow_none=True)
    to_status = fields.String()
    reason = fields.String(allow_none=True)
    outcome = fields.String(allow_none=True)
    occurred_at = fields.DateTime(format="iso")


class ReferralListArgs(Schema):
    status = fields.List(SafeText(validate=validate.OneOf(REFERRAL_STATUSES)), load_default=list)
    service_id = fields.List(fields.UUID(), load_default=list)
    updated_since = SafeDateTime(metadata={"description": "Only referrals changed after this time (for polling)."})
    page = fields.Integer(load_default=1, validate=validate.Range(min=1, max=100_000))
    per_page = fields.Integer(load_default=20, validate=validate.Range(min=1, max=100))


class WebhookIn(Schema):
    url = SafeURL(required=True, schemes={"http", "https"}, require_tld=False, validate=validate.Length(max=2048))
    events = fields.List(
        SafeText(validate=validate.OneOf(WEBHOOK_EVENTS)),
        load_default=lambda: list(WEBHOOK_EVENTS),
        validate=validate.Length(min=1, error="Name at least one event type (leave the field out for all)."),
    )


class WebhookOut(Schema):
    id = fields.UUID(required=True)
    url = SafeText()
    events = fields.Function(lambda s: s.events.split())
    created_at = fields.DateTime(format="iso")
    status = fields.Function(
        lambda s: "disabled" if s.disabled_at else "active", metadata={"enum": ["active", "disabled"]}
    )
    disabled_at = fields.DateTime(format="iso", allow_none=True)
    disabled_reason = fields.String(
        allow_none=True, metadata={"description": "Why deliveries stopped (every attempt failed for a day)."}
    )


class WebhookCreatedOut(WebhookOut):
    secret = SafeText(metadata={"description": "The signing secret, shown only in this response."})


class DeliveryAttemptOut(Schema):
    number = fields.Integer()
    at = fields.DateTime(format="iso")
    status_code = fields.Integer(
        allow_none=True, metadata={"description": "The receiver's HTTP status, if it answered."}
    )
    outcome = fields.String(
        allow_none=True, metadata={"enum": ["delivered", "http_status", "timeout", "unreachable", "address_refused"]}
    )
    error = fields.String(allow_none=True, metadata={"description": "A fixed sentence describing the outcome."})
    duration_ms = fields.Integer()


class WebhookDeliveryOut(Schema):
    id = fields.UUID()
    event_id = fields.UUID()
    payload = fields.Dict()
    status = fields.String(metadata={"enum": ["pending", "delivered", "failed", "cancelled"]})
    attempts = fields.Integer()
    next_attempt_at = fields.DateTime(format="iso")
    delivered_at = fields.DateTime(format="iso", allow_none=True)
    attempt_log = fields.List(fields.Nested(DeliveryAttemptOut), data_key="attempt_log")
