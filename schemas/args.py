"""Query-string arguments of the list endpoints.

Unknown parameters are rejected with a 422 so that a misspelt filter never silently returns
everything. A parameter given several times is ORed (`?organization_id=a&organization_id=b`).
"""
from __future__ import annotations

from datetime import timezone

from marshmallow import RAISE, Schema, ValidationError, fields, validate, validates_schema

from models.vocab import CONTACT_AUDIENCES, CONTACT_CHANNELS, CONTACT_PURPOSES, SERVICE_STATUSES

MAX_PAGE_SIZE = 100
MAX_SEARCH_LENGTH = 200
SORTS = ("relevance", "name", "distance", "modified")
FACETS = ("category", "town", "language", "program")


class QueryText(fields.String):
    """A query-string value: printable text only (no NUL or other control characters)."""

    def _deserialize(self, value, attr, data, **kwargs):
        text = super()._deserialize(value, attr, data, **kwargs)
        if any(ord(ch) < 32 or 0x7F <= ord(ch) < 0xA0 for ch in text):
            raise ValidationError("Control characters are not allowed.")
        return text


def _ids(description: str):
    return fields.List(fields.UUID(), load_default=list, metadata={"description": description})


class PageArgs(Schema):
    class Meta:
        unknown = RAISE

    page = fields.Integer(
        load_default=1, validate=validate.Range(min=1, max=100_000), metadata={"description": "Page number, from 1."}
    )
    per_page = fields.Integer(
        load_default=20,
        validate=validate.Range(min=1, max=MAX_PAGE_SIZE),
        metadata={"description": f"Records per page, 1 to {MAX_PAGE_SIZE} (default 20)."},
    )


class ServiceListArgs(PageArgs):
    organization_id = _ids("Only services of these organizations.")
    program_id = _ids("Only services of these programs.")
    taxonomy_term_id = _ids("Only services in these categories or any category below them.")
    taxonomy_id = _ids("Only services with a category from these taxonomies.")
    status = fields.List(
        fields.String(validate=validate.OneOf(SERVICE_STATUSES)),
        load_default=lambda: ["active"],
        metadata={"description": "Service status; `active` unless given."},
    )
    modified_after = fields.AwareDateTime(
        default_timezone=timezone.utc,
        metadata={"description": "Only records modified on or after this time (ISO 8601; UTC when no offset is given)."},
    )
    full = fields.Boolean(load_default=False, metadata={"description": "Return fully nested records."})
    search = QueryText(
        validate=validate.Length(max=MAX_SEARCH_LENGTH),
        metadata={
            "description": "Words as a family or coordinator would say them; results ranked by relevance. "
            f"Stemmed, with synonyms and typo tolerance. At most {MAX_SEARCH_LENGTH} characters."
        },
    )
    category = fields.List(
        QueryText(validate=validate.Length(min=1, max=128)),
        load_default=list,
        metadata={"description": "A category id or code (`occh-asthma-management`), including categories below it."},
    )
    age = fields.List(
        fields.Float(validate=validate.Range(min=0, max=130)),
        load_default=list,
        metadata={"description": "A child's age in years: services whose age range includes it (or that give none)."},
    )
    age_months = fields.List(
        fields.Integer(validate=validate.Range(min=0, max=130 * 12)),
        load_default=list,
        metadata={"description": "A child's age in months, as `age`."},
    )
    town = fields.List(
        QueryText(validate=validate.Length(min=1, max=100)),
        load_default=list,
        metadata={"description": "A Connecticut town: services whose service area covers it (statewide ones do)."},
    )
    postcode = fields.List(
        fields.String(validate=validate.Regexp(r"^\d{5}(-\d{4})?$", error="Use a 5-digit ZIP code.")),
        load_default=list,
        metadata={
            "description": "A ZIP code: services whose service area covers its town; with `proximity` or "
            "`sort=distance`, the point to measure from."
        },
    )
    language = fields.List(
        fields.String(validate=validate.Regexp(r"^[A-Za-z]{2,3}$", error="Use an ISO 639 code.")),
        load_default=list,
        metadata={"description": "Services offered in this language (ISO 639 code)."},
    )
    lat = fields.Float(validate=validate.Range(min=-90, max=90), metadata={"description": "Latitude of the point to measure from."})
    lon = fields.Float(validate=validate.Range(min=-180, max=180), metadata={"description": "Longitude of the point."})
    proximity = fields.Float(
        validate=validate.Range(min=1, max=500_000),
        metadata={"description": "Only services with a location within this many metres of the point."},
    )
    sort = fields.String(
        validate=validate.OneOf(SORTS),
        metadata={"description": "relevance (default with `search`), name (default otherwise), distance, modified."},
    )
    facets = fields.List(
        fields.String(validate=validate.OneOf(FACETS)),
        load_default=list,
        metadata={"description": "Add counts by category, town, language or program to the envelope under `facets`."},
    )

    @validates_schema
    def point_is_whole(self, data, **kwargs):
        if ("lat" in data) != ("lon" in data):
            raise ValidationError("Give lat and lon together.", "lat" if "lat" not in data else "lon")
        has_point = "lat" in data or len(data.get("postcode", [])) == 1
        if data.get("sort") == "distance" and not has_point:
            raise ValidationError("sort=distance needs lat and lon, or one postcode.", "sort")
        if "proximity" in data and not has_point:
            raise ValidationError("proximity needs lat and lon, or one postcode.", "proximity")


class ProgramListArgs(PageArgs):
    organization_id = _ids("Only programs of these organizations.")
    search = QueryText(
        validate=validate.Length(max=MAX_SEARCH_LENGTH),
        metadata={"description": "Programs whose services match these words, best first."},
    )


class OrganizationListArgs(PageArgs):
    full = fields.Boolean(load_default=False, metadata={"description": "Return fully nested organizations."})
    full_service = fields.Boolean(
        load_default=False, metadata={"description": "Nest each organization's services as full records."}
    )


class OrganizationArgs(Schema):
    class Meta:
        unknown = RAISE

    full_service = fields.Boolean(
        load_default=False, metadata={"description": "Nest the organization's services as full records."}
    )


class TaxonomyTermListArgs(PageArgs):
    taxonomy_id = _ids("Only terms of these taxonomies.")
    parent_id = _ids("Only the direct children of these terms.")
    top_only = fields.Boolean(load_default=False, metadata={"description": "Only terms without a parent."})


class ReferralContactPointListArgs(PageArgs):
    service_id = _ids("Only contact points of these services.")
    program_id = _ids("Only contact points of these programs' services.")
    audience = fields.List(
        fields.String(validate=validate.OneOf(CONTACT_AUDIENCES)),
        load_default=list,
        metadata={"description": "Who the contact point serves."},
    )
    channel = fields.List(
        fields.String(validate=validate.OneOf(CONTACT_CHANNELS)),
        load_default=list,
        metadata={"description": "How to make contact."},
    )
    purpose = fields.List(
        fields.String(validate=validate.OneOf(CONTACT_PURPOSES)),
        load_default=list,
        metadata={"description": "What the contact point is for."},
    )
