"""Referral requests and responses, webhook registrations. Unknown fields are rejected."""
from __future__ import annotations

from datetime import date, timezone

from marshmallow import Schema, ValidationError, fields, post_dump, validate, validates, validates_schema

from models.vocab import (
    CONSENT_METHODS,
    CONTACT_PREFERENCES,
    GUARDIAN_RELATIONSHIPS,
    REFERRAL_STATUSES,
    URGENCIES,
    WEBHOOK_EVENTS,
)

PHONE = validate.Regexp(r"^\+?[0-9 ().-]{7,20}$", error="Not a valid phone number.")
NAME = validate.Length(min=1, max=100)
ZIP = validate.Regexp(r"^\d{5}(-\d{4})?$", error="Use a 5-digit ZIP code.")
MAX_REASON = 2000


class ChildIn(Schema):
    given_name = fields.String(required=True, validate=NAME)
    family_name = fields.String(required=True, validate=NAME)
    birth_date = fields.Date(required=True)
    town = fields.String(validate=validate.Length(min=1, max=100))
    postcode = fields.String(validate=ZIP)

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
    name = fields.String(required=True, validate=validate.Length(min=1, max=200))
    relationship = fields.String(required=True, validate=validate.OneOf(GUARDIAN_RELATIONSHIPS))
    phone = fields.String(validate=PHONE)
    email = fields.Email(validate=validate.Length(max=254))
    preferred_language = fields.String(validate=validate.Regexp(r"^[a-z]{2,3}$", error="Use an ISO 639 code."))
    contact_preference = fields.String(required=True, validate=validate.OneOf(CONTACT_PREFERENCES))
    may_leave_message = fields.Boolean(required=True)

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
    obtained = fields.Boolean(required=True, metadata={"enum": [True], "description": "Must be true: no referral without consent."})
    obtained_by = fields.String(required=True, validate=validate.Length(min=1, max=200))
    relationship = fields.String(required=True, validate=validate.OneOf(GUARDIAN_RELATIONSHIPS + ("self",)))
    obtained_at = fields.AwareDateTime(required=True, default_timezone=timezone.utc)
    method = fields.String(required=True, validate=validate.OneOf(CONSENT_METHODS))

    @validates("obtained")
    def must_be_obtained(self, value: bool, **kwargs):
        if not value:
            raise ValidationError("A referral needs the family's consent.")


class ReferrerIn(Schema):
    name = fields.String(required=True, validate=validate.Length(min=1, max=200))
    organization = fields.String(required=True, validate=validate.Length(min=1, max=200))
    phone = fields.String(validate=PHONE)
    email = fields.Email(validate=validate.Length(max=254))


class ReferralIn(Schema):
    service_id = fields.UUID(required=True)
    child = fields.Nested(ChildIn, required=True)
    guardian = fields.Nested(GuardianIn, required=True)
    consent = fields.Nested(ConsentIn, required=True)
    reason = fields.String(required=True, validate=validate.Length(min=1, max=MAX_REASON))
    urgency = fields.String(required=True, validate=validate.OneOf(URGENCIES))
    referrer = fields.Nested(ReferrerIn, required=True)


class ChildOut(Schema):
    given_name = fields.String(attribute="child_given_name")
    family_name = fields.String(attribute="child_family_name")
    birth_date = fields.Date(attribute="child_birth_date")
    town = fields.String(attribute="child_town")
    postcode = fields.String(attribute="child_postcode")


class GuardianOut(Schema):
    name = fields.String(attribute="guardian_name")
    relationship = fields.String(attribute="guardian_relationship")
    phone = fields.String(attribute="guardian_phone")
    email = fields.String(attribute="guardian_email")
    preferred_language = fields.String(attribute="guardian_preferred_language")
    contact_preference = fields.String(attribute="guardian_contact_preference")
    may_leave_message = fields.Boolean(attribute="guardian_may_leave_message")


class ConsentOut(Schema):
    obtained = fields.Boolean(attribute="consent_obtained")
    obtained_by = fields.String(attribute="consent_obtained_by")
    relationship = fields.String(attribute="consent_relationship")
    obtained_at = fields.DateTime(attribute="consent_obtained_at", format="iso")
    method = fields.String(attribute="consent_method")


class ReferrerOut(Schema):
    name = fields.String(attribute="referrer_name")
    organization = fields.String(attribute="referrer_organization")
    phone = fields.String(attribute="referrer_phone")
    email = fields.String(attribute="referrer_email")


class ReferralOut(Schema):
    id = fields.UUID(required=True)
    service_id = fields.UUID(required=True)
    program_id = fields.UUID()
    status = fields.String(required=True, metadata={"enum": list(REFERRAL_STATUSES)})
    status_reason = fields.String(allow_none=True)
    outcome = fields.String(allow_none=True)
    urgency = fields.String()
    reason = fields.String()
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
    erased_at = fields.DateTime(format="iso", allow_none=True)

    @post_dump(pass_original=True)
    def _without_erased_fields(self, data, original, **kwargs):
        if original.erased_at is not None:
            for name in ("child", "guardian", "consent", "referrer", "reason", "status_reason", "outcome"):
                data.pop(name, None)
        return data

    def _child(self, r):
        return ChildOut().dump(r)

    def _guardian(self, r):
        return GuardianOut().dump(r)

    def _consent(self, r):
        return ConsentOut().dump(r)

    def _referrer(self, r):
        return ReferrerOut().dump(r)


class StatusChangeIn(Schema):
    status = fields.String(required=True, validate=validate.OneOf(REFERRAL_STATUSES))
    reason = fields.String(validate=validate.Length(min=1, max=MAX_REASON))
    outcome = fields.String(validate=validate.Length(min=1, max=MAX_REASON))


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
    status = fields.List(fields.String(validate=validate.OneOf(REFERRAL_STATUSES)), load_default=list)
    service_id = fields.List(fields.UUID(), load_default=list)
    updated_since = fields.AwareDateTime(
        default_timezone=timezone.utc, metadata={"description": "Only referrals changed after this time (for polling)."}
    )
    page = fields.Integer(load_default=1, validate=validate.Range(min=1, max=100_000))
    per_page = fields.Integer(load_default=20, validate=validate.Range(min=1, max=100))


class WebhookIn(Schema):
    url = fields.URL(required=True, schemes={"http", "https"}, require_tld=False, validate=validate.Length(max=2048))
    events = fields.List(
        fields.String(validate=validate.OneOf(WEBHOOK_EVENTS)), load_default=lambda: list(WEBHOOK_EVENTS)
    )


class WebhookOut(Schema):
    id = fields.UUID(required=True)
    url = fields.String()
    events = fields.Function(lambda s: s.events.split())
    created_at = fields.DateTime(format="iso")


class WebhookCreatedOut(WebhookOut):
    secret = fields.String(metadata={"description": "The signing secret, shown only in this response."})


class DeliveryAttemptOut(Schema):
    number = fields.Integer()
    at = fields.DateTime(format="iso")
    status_code = fields.Integer(allow_none=True)
    error = fields.String(allow_none=True)
    duration_ms = fields.Integer()


class WebhookDeliveryOut(Schema):
    id = fields.UUID()
    event_id = fields.UUID()
    payload = fields.Dict()
    status = fields.String(metadata={"enum": ["pending", "delivered", "failed"]})
    attempts = fields.Integer()
    next_attempt_at = fields.DateTime(format="iso")
    delivered_at = fields.DateTime(format="iso", allow_none=True)
    attempt_log = fields.List(fields.Nested(DeliveryAttemptOut), data_key="attempt_log")
