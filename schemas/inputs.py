"""Shapes of directory records as written: by `flask seed` and by the write API.

Unknown fields are rejected (marshmallow's default, RAISE), so a misspelt field is an error
rather than silently lost.
"""

from __future__ import annotations

from marshmallow import Schema, ValidationError, fields, post_load, validate, validates_schema

from models.vocab import (
    CONTACT_AUDIENCES,
    CONTACT_CHANNELS,
    CONTACT_PURPOSES,
    LOCATION_TYPES,
    PHONE_TYPES,
    SERVICE_STATUSES,
)
from schemas.text import SafeEmail, SafeText, SafeURL, StrictBoolean

SLUG = validate.Regexp(r"^[a-z0-9]+(?:-[a-z0-9]+)*$", error="Use lower-case letters, digits and hyphens.")


def Text(max_length: int = 255, *, min_length: int | None = None, **kwargs) -> fields.String:
    """A string of bounded length (at least one character when `min_length=1`)."""
    return SafeText(validate=validate.Length(min=min_length, max=max_length), **kwargs)


Provenance = lambda: fields.List(SafeText(validate=validate.Length(max=500)), load_default=list)  # noqa: E731


class TaxonomyIn(Schema):
    id = fields.UUID(required=True)
    name = Text(required=True, min_length=1)
    description = Text(4000, required=True)
    uri = SafeURL()
    version = Text(64)


class HL7CodingIn(Schema):
    code = Text(32, required=True)
    display = Text(255, required=True)


class TaxonomyTermIn(Schema):
    id = fields.UUID(required=True)
    taxonomy_id = fields.UUID(required=True)
    parent_id = fields.UUID()
    code = Text(128, required=True, min_length=1)
    name = Text(required=True, min_length=1)
    description = Text(4000, required=True)
    language = Text(16)
    term_uri = SafeURL()
    hl7_service_type = fields.Nested(HL7CodingIn)


class TaxonomyFileIn(Schema):
    taxonomies = fields.List(fields.Nested(TaxonomyIn), required=True)
    taxonomy_terms = fields.List(fields.Nested(TaxonomyTermIn), required=True)
    references = Provenance()


class PhoneIn(Schema):
    id = fields.UUID(required=True)
    number = Text(64, required=True, min_length=1)
    extension = fields.Integer(validate=validate.Range(min=0))
    type = SafeText(validate=validate.OneOf(PHONE_TYPES))
    description = Text(1000)


class AddressIn(Schema):
    id = fields.UUID(required=True)
    attention = Text()
    address_1 = Text(required=True)
    address_2 = Text()
    city = Text(100, required=True)
    region = Text(100)
    state_province = Text(100, required=True)
    postal_code = Text(16, required=True)
    country = SafeText(required=True, validate=validate.Length(equal=2))
    address_type = SafeText(required=True, validate=validate.OneOf(LOCATION_TYPES))


class LocationIn(Schema):
    id = fields.UUID(required=True)
    name = Text()
    alternate_name = Text()
    location_type = SafeText(required=True, validate=validate.OneOf(LOCATION_TYPES))
    description = Text(4000)
    url = SafeURL()
    transportation = Text(2000)
    latitude = fields.Float(validate=validate.Range(min=-90, max=90))
    longitude = fields.Float(validate=validate.Range(min=-180, max=180))
    addresses = fields.List(fields.Nested(AddressIn), load_default=list)
    phones = fields.List(fields.Nested(PhoneIn), load_default=list)


class OrganizationIn(Schema):
    id = fields.UUID(required=True)
    name = Text(required=True, min_length=1)
    alternate_name = Text()
    description = Text(4000, required=True)
    email = SafeEmail()
    website = SafeURL()
    parent_organization_id = fields.UUID()
    phones = fields.List(fields.Nested(PhoneIn), load_default=list)
    locations = fields.List(fields.Nested(LocationIn), load_default=list)
    sources = Provenance()
    references = Provenance()


class ProgramIn(Schema):
    id = fields.UUID(required=True)
    slug = SafeText(required=True, validate=[validate.Length(min=1, max=100), SLUG])
    organization_id = fields.UUID(required=True)
    name = Text(required=True, min_length=1)
    alternate_name = Text()
    description = Text(4000, required=True)
    sources = Provenance()


class ServiceAreaIn(Schema):
    id = fields.UUID(required=True)
    name = Text()
    description = Text(4000)
    extent = SafeText()
    extent_type = Text(32)
    uri = SafeURL()
    statewide = StrictBoolean(load_default=False)
    towns = fields.List(Text(100), load_default=list)


class ContactIn(Schema):
    id = fields.UUID(required=True)
    name = Text()
    title = Text()
    department = Text()
    email = SafeEmail()
    phones = fields.List(fields.Nested(PhoneIn), load_default=list)


class LanguageIn(Schema):
    id = fields.UUID(required=True)
    name = Text(100)
    code = SafeText(required=True, validate=validate.Regexp(r"^[a-z]{2,3}$", error="Use an ISO 639 code."))
    note = Text(1000)


class ReferralContactPointIn(Schema):
    id = fields.UUID(required=True)
    channel = SafeText(required=True, validate=validate.OneOf(CONTACT_CHANNELS))
    value = Text(2048, required=True, min_length=1)
    audience = SafeText(required=True, validate=validate.OneOf(CONTACT_AUDIENCES))
    purpose = SafeText(required=True, validate=validate.OneOf(CONTACT_PURPOSES))
    instructions = Text(2000)
    sources = Provenance()  # the pages that give this contact point (seed data); not stored

    @post_load
    def without_provenance(self, data, **kwargs):
        data.pop("sources", None)
        return data


class ServiceIn(Schema):
    id = fields.UUID(required=True)
    organization_id = fields.UUID(required=True)
    program_id = fields.UUID()
    name = Text(required=True, min_length=1)
    alternate_name = Text()
    description = Text(8000)
    url = SafeURL()
    email = SafeEmail()
    status = SafeText(required=True, validate=validate.OneOf(SERVICE_STATUSES))
    interpretation_services = Text(2000)
    application_process = Text(4000)
    fees_description = Text(2000)
    eligibility_description = Text(4000)
    minimum_age = fields.Float(validate=validate.Range(min=0, max=130))
    maximum_age = fields.Float(validate=validate.Range(min=0, max=130))
    alert = Text(2000)
    accepts_referrals = StrictBoolean(load_default=False)
    accepts_referrals_sources = Provenance()  # what says the program takes electronic referrals; not stored
    categories = fields.List(Text(128), load_default=list)
    service_areas = fields.List(fields.Nested(ServiceAreaIn), load_default=list)
    phones = fields.List(fields.Nested(PhoneIn), load_default=list)
    contacts = fields.List(fields.Nested(ContactIn), load_default=list)
    languages = fields.List(fields.Nested(LanguageIn), load_default=list)
    location_ids = fields.List(fields.UUID(), load_default=list)
    referral_contact_points = fields.List(fields.Nested(ReferralContactPointIn), load_default=list)
    sources = Provenance()

    @validates_schema
    def ages_in_order(self, data, **kwargs):
        low, high = data.get("minimum_age"), data.get("maximum_age")
        if low is not None and high is not None and low > high:
            raise ValidationError("Must not be below minimum_age.", "maximum_age")
