"""Response shapes of the HSDS 3.0 records.

Empty values are left out, not sent as null: HSDS types are not nullable.
"""

from __future__ import annotations

import uuid

from marshmallow import Schema, fields, post_dump

from models.vocab import CONTACT_AUDIENCES, CONTACT_CHANNELS, CONTACT_PURPOSES, SERVICE_STATUSES


def _is_empty(value) -> bool:
    return value is None or value == "" or value == [] or value == {}


class HSDSSchema(Schema):
    """Drops empty values from every dumped record."""

    @post_dump
    def drop_empty(self, data, **kwargs):
        return {key: value for key, value in data.items() if not _is_empty(value)}


class PhoneSchema(HSDSSchema):
    id = fields.UUID(required=True)
    organization_id = fields.UUID()
    service_id = fields.UUID()
    location_id = fields.UUID()
    contact_id = fields.UUID()
    service_at_location_id = fields.UUID()
    number = fields.String(required=True)
    extension = fields.Integer()
    type = fields.String()
    description = fields.String()


class LanguageSchema(HSDSSchema):
    id = fields.UUID(required=True)
    service_id = fields.UUID()
    location_id = fields.UUID()
    phone_id = fields.UUID()
    name = fields.String()
    code = fields.String(metadata={"description": "ISO 639 language code."})
    note = fields.String()


class ScheduleSchema(HSDSSchema):
    id = fields.UUID(required=True)
    service_id = fields.UUID()
    location_id = fields.UUID()
    service_at_location_id = fields.UUID()
    valid_from = fields.String()
    valid_to = fields.String()
    dtstart = fields.String()
    until = fields.String()
    wkst = fields.String()
    freq = fields.String()
    interval = fields.Integer()
    byday = fields.String()
    opens_at = fields.String()
    closes_at = fields.String()
    description = fields.String()
    attending_type = fields.String()
    notes = fields.String()


class ContactSchema(HSDSSchema):
    id = fields.UUID(required=True)
    organization_id = fields.UUID()
    service_id = fields.UUID()
    service_at_location_id = fields.UUID()
    location_id = fields.UUID()
    name = fields.String()
    title = fields.String()
    department = fields.String()
    email = fields.Email()
    phones = fields.List(fields.Nested(PhoneSchema))


class AddressSchema(HSDSSchema):
    id = fields.UUID(required=True)
    location_id = fields.UUID()
    attention = fields.String()
    address_1 = fields.String(required=True)
    address_2 = fields.String()
    city = fields.String(required=True)
    region = fields.String()
    state_province = fields.String(required=True)
    postal_code = fields.String(required=True)
    country = fields.String(required=True)
    address_type = fields.String(required=True)


class LocationSchema(HSDSSchema):
    id = fields.UUID(required=True)
    location_type = fields.String(required=True)
    url = fields.URL()
    organization_id = fields.UUID()
    name = fields.String()
    alternate_name = fields.String()
    description = fields.String()
    transportation = fields.String()
    latitude = fields.Float()
    longitude = fields.Float()
    addresses = fields.List(fields.Nested(AddressSchema))
    phones = fields.List(fields.Nested(PhoneSchema))
    languages = fields.List(fields.Nested(LanguageSchema))


class HL7CodingSchema(Schema):
    system = fields.Constant("http://terminology.hl7.org/CodeSystem/service-type")
    code = fields.String(attribute="hl7_service_type_code")
    display = fields.String(attribute="hl7_service_type_display")


class TaxonomySchema(HSDSSchema):
    id = fields.UUID(required=True)
    name = fields.String(required=True)
    description = fields.String(required=True)
    uri = fields.URL()
    version = fields.String()


class TaxonomyTermSchema(HSDSSchema):
    id = fields.UUID(required=True)
    code = fields.String()
    name = fields.String(required=True)
    description = fields.String(required=True)
    parent_id = fields.UUID()
    taxonomy = fields.String()
    language = fields.String()
    taxonomy_id = fields.UUID()
    term_uri = fields.URL()
    hl7_service_type = fields.Method(
        "_hl7",
        metadata={"description": "Extension: the HL7 FHIR service-type code this category maps to, if any."},
    )

    def _hl7(self, term):
        if not getattr(term, "hl7_service_type_code", None):
            return None
        return HL7CodingSchema().dump(term)


class TaxonomyTermDetailSchema(TaxonomyTermSchema):
    taxonomy_detail = fields.Nested(TaxonomySchema)


class AttributeSchema(HSDSSchema):
    id = fields.UUID(required=True)
    link_id = fields.UUID()
    taxonomy_term_id = fields.UUID()
    link_type = fields.String()
    link_entity = fields.String()
    value = fields.String()
    taxonomy_term = fields.Nested(TaxonomyTermSchema)


class ServiceAreaSchema(HSDSSchema):
    id = fields.UUID(required=True)
    service_id = fields.UUID()
    name = fields.String()
    description = fields.String()
    extent = fields.String()
    extent_type = fields.String()
    uri = fields.String()


class ReferralContactPointSchema(HSDSSchema):
    id = fields.UUID(required=True)
    service_id = fields.UUID(required=True)
    channel = fields.String(required=True, metadata={"enum": list(CONTACT_CHANNELS)})
    value = fields.String(required=True, metadata={"description": "Phone number, e-mail address, URL or place."})
    audience = fields.String(required=True, metadata={"enum": list(CONTACT_AUDIENCES)})
    purpose = fields.String(required=True, metadata={"enum": list(CONTACT_PURPOSES)})
    instructions = fields.String()


class OrganizationBriefSchema(HSDSSchema):
    id = fields.UUID(required=True)
    name = fields.String(required=True)
    alternate_name = fields.String()
    description = fields.String(required=True)
    email = fields.Email()
    website = fields.URL()
    parent_organization_id = fields.UUID()


class ProgramBriefSchema(HSDSSchema):
    id = fields.UUID(required=True)
    organization_id = fields.UUID()
    name = fields.String(required=True)
    alternate_name = fields.String()
    description = fields.String(required=True)
    slug = fields.String(metadata={"description": "Extension: a readable, stable key, e.g. `help-me-grow`."})


class ServiceBriefSchema(HSDSSchema):
    """The service's own fields, as in the HSDS service list."""

    id = fields.UUID(required=True)
    organization_id = fields.UUID()
    program_id = fields.UUID()
    name = fields.String(required=True)
    alternate_name = fields.String()
    description = fields.String()
    url = fields.URL()
    email = fields.Email()
    status = fields.String(required=True, metadata={"enum": list(SERVICE_STATUSES)})
    interpretation_services = fields.String()
    application_process = fields.String()
    fees_description = fields.String()
    eligibility_description = fields.String()
    minimum_age = fields.Float()
    maximum_age = fields.Float()
    alert = fields.String()
    last_modified = fields.DateTime(format="iso")
    accepts_referrals = fields.Boolean(
        metadata={"description": "Extension: whether the service takes referrals of a child."}
    )
    assured_date = fields.Date(metadata={"description": "When a person last checked the whole record (HSDS)."})
    assurer_email = fields.String(metadata={"description": "Who checked it: the contact of the program's key (HSDS)."})


class ServiceListItemSchema(ServiceBriefSchema):
    organization = fields.Nested(OrganizationBriefSchema)
    program = fields.Nested(ProgramBriefSchema)
    distance = fields.Float(
        metadata={"description": "Extension: metres from the query point to the nearest location (near-me queries)."}
    )


class ServiceMinimalSchema(HSDSSchema):
    """A service with `minimal=true`: its id and when it last changed."""

    id = fields.UUID(required=True)
    last_modified = fields.AwareDateTime(metadata={"description": "When the service last changed (UTC)."})


class ServiceAtLocationBriefSchema(HSDSSchema):
    id = fields.UUID(required=True)
    service_id = fields.UUID()
    location_id = fields.UUID()
    description = fields.String()
    location = fields.Nested(LocationSchema)


class ServiceSchema(ServiceListItemSchema):
    """A full service record with every nested record."""

    phones = fields.List(fields.Nested(PhoneSchema))
    schedules = fields.List(fields.Nested(ScheduleSchema))
    service_areas = fields.List(fields.Nested(ServiceAreaSchema))
    service_at_locations = fields.List(fields.Nested(ServiceAtLocationBriefSchema))
    languages = fields.List(fields.Nested(LanguageSchema))
    contacts = fields.List(fields.Nested(ContactSchema))
    attributes = fields.List(fields.Nested(AttributeSchema))
    referral_contact_points = fields.List(
        fields.Nested(ReferralContactPointSchema),
        metadata={"description": "Extension: who to contact to refer a child to this service, and how."},
    )
    capacities = fields.Method(
        "_capacities",
        metadata={
            "type": "array",
            "items": {"type": "object"},
            "description": "HSDS 3.1 service_capacity: `status` (an SDOH capacity code, or `unknown` when none was "
            "set or it is older than CAPACITY_STALE_DAYS), `available` and `maximum` in a `unit`, "
            "`expected_wait_days`, `description` and `updated`.",
        },
    )

    def _capacities(self, service) -> list[dict]:
        from flask import current_app

        from core.editing import capacity_status

        status = capacity_status(service, current_app.config.get("CAPACITY_STALE_DAYS", 30))
        if status == "unknown" and service.capacity_status is None:
            return []
        known = status != "unknown"
        record = {
            "id": str(uuid.uuid5(service.id, "capacity")),
            "service_id": str(service.id),
            "status": status,
            "available": service.capacity_available if known else None,
            "maximum": service.capacity_maximum if known else None,
            "unit": {"name": service.capacity_unit} if known and service.capacity_unit else None,
            "expected_wait_days": service.capacity_wait_days if known else None,
            "description": service.capacity_description if known else None,
            "updated": service.capacity_updated.isoformat() if service.capacity_updated else None,
        }
        return [{key: value for key, value in record.items() if value is not None}]


class ServiceAtLocationListItemSchema(ServiceAtLocationBriefSchema):
    service = fields.Nested(ServiceBriefSchema)
    distance = fields.Float(
        metadata={"description": "Extension: metres from the query point to the service's nearest location."}
    )


class ServiceAtLocationSchema(ServiceAtLocationListItemSchema):
    phones = fields.List(fields.Nested(PhoneSchema))
    contacts = fields.List(fields.Nested(ContactSchema))
    schedules = fields.List(fields.Nested(ScheduleSchema))


class OrganizationSchema(OrganizationBriefSchema):
    phones = fields.List(fields.Nested(PhoneSchema))
    contacts = fields.List(fields.Nested(ContactSchema))
    locations = fields.List(fields.Nested(LocationSchema))
    programs = fields.List(fields.Nested(ProgramBriefSchema))
    services = fields.List(fields.Nested(ServiceBriefSchema))


class OrganizationFullServiceSchema(OrganizationSchema):
    services = fields.List(fields.Nested(ServiceSchema))


class ProgramSchema(ProgramBriefSchema):
    organization = fields.Nested(OrganizationBriefSchema)
    services = fields.List(fields.Nested(ServiceBriefSchema))
    last_modified = fields.DateTime(format="iso")


class PageSchema(Schema):
    """The HSDS `Page` envelope around every list."""

    total_items = fields.Integer(required=True)
    total_pages = fields.Integer(required=True)
    page_number = fields.Integer(required=True)
    size = fields.Integer(required=True)
    first_page = fields.Boolean(required=True)
    last_page = fields.Boolean(required=True)
    empty = fields.Boolean(required=True)
    total_items_exact = fields.Boolean(
        required=True,
        metadata={
            "description": "False when a service list stopped counting at a bound (10,000 matches by default, or just "
            "past the page asked for): `total_items` is then a lower bound and another page follows."
        },
    )


class FacetValueSchema(Schema):
    value = fields.String(
        required=True, metadata={"description": "Category code, town, language code or program slug."}
    )
    id = fields.String(metadata={"description": "The category's or program's id."})
    name = fields.String()
    count = fields.Integer(required=True)


class FacetsSchema(Schema):
    category = fields.List(fields.Nested(FacetValueSchema))
    town = fields.List(fields.Nested(FacetValueSchema))
    language = fields.List(fields.Nested(FacetValueSchema))
    program = fields.List(fields.Nested(FacetValueSchema))


class AnyOfRecords(fields.Field):
    """Documentation only: a record of one of `schemas` (the brief one, or the full one a
    `full=true` list answers). OpenAPI: `anyOf` the schemas (see `any_of_records`)."""

    def __init__(self, *schemas: type[Schema], **kwargs):
        super().__init__(**kwargs)
        self.schemas = schemas


def any_of_records(self, field, **kwargs) -> dict:
    """apispec attribute function (bound to its OpenAPIConverter) for AnyOfRecords."""
    if isinstance(field, AnyOfRecords):
        return {"anyOf": [self.resolve_nested_schema(schema) for schema in field.schemas]}
    return {}


class AdvisorySourceSchema(Schema):
    name = fields.String(required=True, metadata={"description": "The public page the number is taken from."})
    url = fields.String(required=True)


class AdvisorySchema(Schema):
    """Who to call now: shown above the results when a search's words signal an emergency."""

    id = fields.String(required=True, metadata={"example": "emergency-911"})
    name = fields.String(required=True, metadata={"example": "Emergency: call 911"})
    phone = fields.String(required=True, metadata={"example": "911"})
    text = fields.String(required=True)
    language = fields.String(required=True, metadata={"description": "The language of `name` and `text` (`en`, `es`)."})
    sources = fields.List(fields.Nested(AdvisorySourceSchema), required=True)


class SuggestedCategorySchema(Schema):
    code = fields.String(required=True)
    name = fields.String(required=True)


class SuggestionsSchema(Schema):
    did_you_mean = fields.String(
        metadata={"description": "The search with a misspelt word replaced by a word the directory knows."}
    )
    categories = fields.List(
        fields.Nested(SuggestedCategorySchema), required=True, metadata={"description": "Broader categories to browse."}
    )


def page_of(
    item_schema: type[Schema],
    name: str,
    facets: bool = False,
    full: tuple[type[Schema], ...] = (),
    guidance: bool = False,
) -> type[Schema]:
    """A `Page` schema whose `contents` holds items of `item_schema`, or of one of `full` when
    the list can answer full records (and `facets`, for the service lists that can count them).
    Documentation only: views dump the page themselves (api.common.page_response)."""
    item = AnyOfRecords(item_schema, *full) if full else fields.Nested(item_schema)
    body: dict[str, fields.Field] = {"contents": fields.List(item, required=True)}
    if facets:
        body["facets"] = fields.Nested(FacetsSchema, metadata={"description": "Counts, when `facets` was asked for."})
    if guidance:
        body["advisories"] = fields.List(
            fields.Nested(AdvisorySchema),
            metadata={
                "description": "With `search`, when its words signal an emergency or a crisis "
                "(someone shot or stabbed, "
                "not breathing, poisoning or overdose, suicide or self-harm, abuse or neglect of a child, violence at "
                "home), in English or Spanish: who to call now, to show above the results. Absent otherwise."
            },
        )
        body["suggestions"] = fields.Nested(
            SuggestionsSchema, metadata={"description": "With `search`, when nothing matched: what to try instead."}
        )
    return type(name, (PageSchema,), body)
