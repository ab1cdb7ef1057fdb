"""Query-string arguments of the list endpoints.

Unknown parameters are rejected with a 422 so that a misspelt filter never silently returns
everything. A parameter given several times is ORed (`?organization_id=a&organization_id=b`).
"""

from __future__ import annotations

from marshmallow import RAISE, Schema, ValidationError, fields, post_load, validate, validates_schema

from models.vocab import CONTACT_AUDIENCES, CONTACT_CHANNELS, CONTACT_PURPOSES, SERVICE_STATUSES
from schemas.text import LanguageTag, SafeDateTime, check_text

MAX_PAGE_SIZE = 100
MINIMAL_PAGE_SIZE = 10_000  # `minimal=true` aims to answer with every service in one page
MAX_SEARCH_LENGTH = 200
SORTS = ("relevance", "name", "distance", "modified")
FORMATS = ("json", "ndjson")
FACETS = ("category", "town", "language", "program")
# No C0 or C1 control character (the rule QueryText applies), for the OpenAPI document.
PRINTABLE = "^[^\\x00-\\x1f\\x7f-\\x9f]*$"


class QueryText(fields.String):
    """A query-string value: printable text only (no NUL or other control characters)."""

    def __init__(self, **kwargs):
        kwargs["metadata"] = {"pattern": PRINTABLE, **kwargs.get("metadata", {})}
        super().__init__(**kwargs)

    def _deserialize(self, value, attr, data, **kwargs):
        text = check_text(super()._deserialize(value, attr, data, **kwargs))
        if any(ord(ch) < 32 or 0x7F <= ord(ch) < 0xA0 for ch in text):
            raise ValidationError("Control characters are not allowed.")
        return text


class CommaList(fields.List):
    """A list parameter given several times or as one comma-separated value (`facets=category,town`),
    or both; an empty item is checked like any other (`taxonomy_id=` is not an id: a 422)."""

    def _deserialize(self, value, attr, data, **kwargs):
        if isinstance(value, str):
            value = [value]
        if isinstance(value, (list, tuple)):
            value = [part.strip() for item in value for part in (item.split(",") if isinstance(item, str) else [item])]
        return super()._deserialize(value, attr, data, **kwargs)


def _ids(description: str):
    return CommaList(fields.UUID(), load_default=list, metadata={"description": description})


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


def _search(description: str):
    return QueryText(validate=validate.Length(max=MAX_SEARCH_LENGTH), metadata={"description": description})


class HSDSListArgs(PageArgs):
    """A list HSDS defines `format` on: `json` (the page envelope) or `ndjson` (every result,
    streamed, one record a line; `page` and `per_page` do not apply and are refused)."""

    format = fields.String(
        load_default="json",
        validate=validate.OneOf(FORMATS),
        metadata={
            "description": "`json` (default): one page in the `Page` envelope. `ndjson`: every matching record, "
            "streamed as `application/x-ndjson`, one JSON record a line, no envelope and no paging."
        },
    )

    @validates_schema(pass_original=True)
    def ndjson_is_unpaged(self, data, original, **kwargs):
        # A repeated filter is ORed; a parameter with one value (`format`, `page`, `full`, ...)
        # given twice has no meaning, and is refused rather than read as its first value.
        getlist = getattr(getattr(original, "data", None), "getlist", None)
        if getlist is not None:
            for name, field in self.fields.items():
                if not isinstance(field, fields.List) and len(getlist(field.data_key or name)) > 1:
                    raise ValidationError("Give this parameter once.", field.data_key or name)
        if data.get("format") == "ndjson":
            given = set(original)  # the keys sent (webargs' proxy answers `in` for any key)
            for name in ("page", "per_page"):
                if name in given:
                    raise ValidationError("format=ndjson streams every result; it takes no page or per_page.", name)


class ServiceFilterArgs(HSDSListArgs):
    organization_id = _ids("Only services of these organizations.")
    program_id = _ids("Only services of these programs.")
    taxonomy_term_id = _ids("Only services in these categories or any category below them.")
    taxonomy_id = _ids("Only services with a category from these taxonomies.")
    status = CommaList(
        fields.String(validate=validate.OneOf(SERVICE_STATUSES)),
        load_default=lambda: ["active"],
        metadata={"description": "Service status; `active` unless given."},
    )
    modified_after = SafeDateTime(
        metadata={
            "description": "Only records modified on or after this time (ISO 8601; UTC when no offset is given)."
        },
    )
    verified_before = fields.Date(
        metadata={"description": "Only services nobody verified (`assured_date`) on or after this day, or ever."}
    )
    accepting_new = fields.Boolean(
        metadata={
            "description": "`true`: services whose current capacity status takes new clients (`capacity` or "
            "`waitlist`, set within CAPACITY_STALE_DAYS); `false`: every other service."
        }
    )
    full = fields.Boolean(load_default=False, metadata={"description": "Return fully nested records."})
    accepts_referrals = fields.Boolean(
        metadata={
            "description": "`true`: only services that take referrals through this API; "
            "`false`: only those that do not."
        }
    )
    search = QueryText(
        validate=validate.Length(max=MAX_SEARCH_LENGTH),
        metadata={
            "description": "Words as a family or coordinator would say them; results ranked by relevance. "
            f"Stemmed, with synonyms and typo tolerance. At most {MAX_SEARCH_LENGTH} characters."
        },
    )
    category = CommaList(
        QueryText(validate=validate.Length(min=1, max=128)),
        load_default=list,
        metadata={"description": "A category id or code (`occh-asthma-management`), including categories below it."},
    )
    age = CommaList(
        fields.Float(validate=validate.Range(min=0, max=130)),
        load_default=list,
        metadata={"description": "A child's age in years: services whose age range includes it (or that give none)."},
    )
    age_months = CommaList(
        fields.Integer(validate=validate.Range(min=0, max=130 * 12)),
        load_default=list,
        metadata={"description": "A child's age in months, as `age`."},
    )
    town = CommaList(
        QueryText(validate=validate.Length(min=1, max=100)),
        load_default=list,
        metadata={
            "description": "A Connecticut town (one of the 169): services whose service area covers it, "
            "statewide ones, "
            "and those that state no service area."
        },
    )
    postcode = CommaList(
        fields.String(validate=validate.Regexp(r"^\d{5}(-\d{4})?$", error="Use a 5-digit ZIP code.")),
        load_default=list,
        metadata={
            "description": "A ZIP code: services that cover a town it serves (as `town`); with `proximity` or "
            "`sort=distance`, the point to measure from."
        },
    )
    language = CommaList(
        LanguageTag(),
        load_default=list,
        metadata={
            "description": "Services offered in this language: a BCP 47 tag, "
            "of which the language counts (`es-US`: `es`)."
        },
    )
    lang = fields.String(
        validate=validate.OneOf(("en", "es")),
        metadata={
            "description": "The language to answer in (`es`: Spanish), as `Accept-Language` does: translated fields "
            "where a record has them, and the `advisories` text."
        },
    )
    lat = fields.Float(
        validate=validate.Range(min=-90, max=90), metadata={"description": "Latitude of the point to measure from."}
    )
    lon = fields.Float(validate=validate.Range(min=-180, max=180), metadata={"description": "Longitude of the point."})
    proximity = fields.Float(
        validate=validate.Range(min=1, max=500_000),
        metadata={"description": "Only services with a location within this many metres of the point."},
    )
    sort = fields.String(
        validate=validate.OneOf(SORTS),
        metadata={"description": "relevance (default with `search`), name (default otherwise), distance, modified."},
    )
    facets = CommaList(
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
        if data.get("format") == "ndjson" and data.get("facets"):
            raise ValidationError("Facets are counted in the JSON envelope; format=ndjson has none.", "facets")


class ServiceListArgs(ServiceFilterArgs):
    per_page = fields.Integer(
        validate=validate.Range(min=1, max=MINIMAL_PAGE_SIZE),
        metadata={
            "description": f"Records per page, 1 to {MAX_PAGE_SIZE} (default 20); with `minimal=true`, "
            f"1 to {MINIMAL_PAGE_SIZE:,} (default {MINIMAL_PAGE_SIZE:,}), so that one page holds every service."
        },
    )
    minimal = fields.Boolean(
        load_default=False,
        metadata={
            "description": "Each service as its `id` and `last_modified` only (the HSDS field of its modified "
            "date), every service in one page where there are at most 10,000. Not with `full`."
        },
    )

    @validates_schema
    def minimal_is_alone(self, data, **kwargs):
        if data.get("minimal") and data.get("full"):
            raise ValidationError("Choose minimal or full, not both.", "minimal")
        if not data.get("minimal") and data.get("per_page", 0) > MAX_PAGE_SIZE:
            raise ValidationError(
                f"Must be between 1 and {MAX_PAGE_SIZE} (up to {MINIMAL_PAGE_SIZE} with minimal=true).", "per_page"
            )

    @post_load
    def default_page_size(self, data, **kwargs):
        if data.get("per_page") is None:
            data["per_page"] = MINIMAL_PAGE_SIZE if data["minimal"] else 20
        return data


class ProgramListArgs(PageArgs):
    organization_id = _ids("Only programs of these organizations.")
    search = _search("Programs whose services match these words, best first.")


class TaxonomyListArgs(HSDSListArgs):
    search = _search("Taxonomies whose name or description contains every word.")


class OrganizationListArgs(HSDSListArgs):
    search = _search(
        "Organizations whose name, alternate name or description contains every word, or that provide an "
        "active service matching the words; those with the best-matching service first."
    )
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


class TaxonomyTermListArgs(HSDSListArgs):
    search = _search("Terms whose name, code or description contains every word.")
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
