"""The field catalogue: which HSDS 3.0 tables and fields this directory stores, and nothing else.

Every other part of `core.hsds` derives from `TABLES`: the import parses and checks the fields
listed here (and reports any other as not stored), the export writes them and describes them
in `datapackage.json`, and `tests/core/test_hsds_profile.py` holds HSDS 3.0 itself, the
models and the response schemas (`schemas/hsds.py`) to them, both ways. Adding an HSDS field
is one entry in a table's list below, plus the model column (and migration) that stores it
and the schema field that answers it; a rule the column type cannot say (a vocabulary, a
range, a format) goes in `RULES`. A field the API answers but the import does not take is
declared in `SERVER_KEPT`, a stored field the API does not answer in `NOT_ANSWERED`.

A field's kind (uuid, string, number, integer, boolean, datetime), whether it is required, its
longest length and the table an id refers to are read from the model's column.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import Boolean, Column, Float, Integer, Table, Uuid

from models import (
    Address,
    Attribute,
    Contact,
    Language,
    Location,
    Organization,
    Phone,
    Program,
    ReferralContactPoint,
    Schedule,
    Service,
    ServiceArea,
    ServiceAreaTown,
    ServiceAtLocation,
    Taxonomy,
    TaxonomyTerm,
    UTCDateTime,
)
from models.vocab import (
    CONTACT_AUDIENCES,
    CONTACT_CHANNELS,
    CONTACT_PURPOSES,
    LOCATION_TYPES,
    PHONE_TYPES,
    SERVICE_STATUSES,
)

# The HSDS version this directory follows, as `GET /` names it. HSDS's own `datapackage.json`
# names the full release (3.0.0), and so does the export's (`PACKAGE_VERSION`).
HSDS_VERSION = "3.0"
PACKAGE_VERSION = f"{HSDS_VERSION}.0"
PACKAGE_FILE = "datapackage.json"


@dataclass(frozen=True)
class Field:
    """One stored field of a table and the rules its values follow."""

    name: str
    kind: str  # uuid, string, number, integer, boolean, datetime
    required: bool = False
    max_length: int | None = None
    choices: tuple[str, ...] | None = None
    low: float | None = None
    high: float | None = None
    format: str | None = None  # email, uri, date, time
    ref: str | None = None  # the table an id refers to
    extension: bool = False  # not an HSDS field: this directory's own


@dataclass(frozen=True)
class TableSpec:
    """One table of the package: its HSDS resource name, its CSV file, its model and fields."""

    name: str  # the HSDS resource name
    path: str  # the CSV file of the package
    model: type
    fields: tuple[Field, ...]
    extension: bool = False

    @property
    def table(self) -> Table:
        return self.model.__table__  # type: ignore[attr-defined]  # a model's table is a Table

    def field(self, name: str) -> Field | None:
        return next((f for f in self.fields if f.name == name), None)

    @property
    def names(self) -> frozenset[str]:
        return _NAMES.setdefault(self.name, frozenset(f.name for f in self.fields))


_NAMES: dict[str, frozenset[str]] = {}


# Rules beyond what the model's column types say (HSDS formats, vocabularies, ranges).
RULES: dict[str, dict[str, dict[str, Any]]] = {
    "taxonomy": {"uri": {"format": "uri"}},
    "taxonomy_term": {"term_uri": {"format": "uri"}},
    "organization": {"email": {"format": "email"}, "website": {"format": "uri"}},
    "program": {"slug": {"required": False}},
    "location": {
        "location_type": {"required": True, "choices": LOCATION_TYPES},
        "url": {"format": "uri"},
        "latitude": {"low": -90, "high": 90},
        "longitude": {"low": -180, "high": 180},
    },
    "address": {"address_type": {"required": True, "choices": LOCATION_TYPES}},
    "service": {
        "status": {"required": True, "choices": SERVICE_STATUSES},
        "url": {"format": "uri"},
        "email": {"format": "email"},
        "minimum_age": {"low": 0, "high": 130},
        "maximum_age": {"low": 0, "high": 130},
    },
    "contact": {"email": {"format": "email"}},
    "phone": {"type": {"choices": PHONE_TYPES}, "extension": {"low": 0}},
    "schedule": {
        **{name: {"format": "date"} for name in ("valid_from", "valid_to", "dtstart", "until")},
        "opens_at": {"format": "time"},
        "closes_at": {"format": "time"},
        "wkst": {"choices": ("MO", "TU", "WE", "TH", "FR", "SA", "SU")},
        "freq": {"choices": ("WEEKLY", "MONTHLY")},
        "interval": {"low": 0},
    },
    "referral_contact_point": {
        "channel": {"choices": CONTACT_CHANNELS},
        "audience": {"choices": CONTACT_AUDIENCES},
        "purpose": {"choices": CONTACT_PURPOSES},
    },
}
# Columns with a default are optional in the file, whatever the model says.
OPTIONAL = {"accepts_referrals", "statewide", "last_modified"}


def _kind(column: Column) -> str:
    """The kind of value a column holds, as the package's field types name it."""
    kinds = ((Uuid, "uuid"), (Boolean, "boolean"), (Integer, "integer"), (Float, "number"), (UTCDateTime, "datetime"))
    return next((kind for type_, kind in kinds if isinstance(column.type, type_)), "string")


def _field(table_name: str, column: Column, extension: bool) -> Field:
    refs = [fk.column.table.name for fk in column.foreign_keys]
    rules = {
        "required": not column.nullable and column.name not in OPTIONAL,
        "max_length": getattr(column.type, "length", None),
        "ref": refs[0] if refs else None,
        **RULES.get(table_name, {}).get(column.name, {}),
    }
    return Field(column.name, _kind(column), extension=extension, **rules)


def _spec(name: str, path: str, model: type, hsds: str, extensions: str = "", extension: bool = False) -> TableSpec:
    """A table's spec: `hsds` names its HSDS fields, `extensions` this directory's own
    (`extension`: the whole table is this directory's own)."""
    table: Table = model.__table__  # type: ignore[attr-defined]
    fields = [
        _field(name, table.c[column_name], is_extension)
        for names, is_extension in ((hsds.split(), extension), (extensions.split(), True))
        for column_name in names
    ]
    return TableSpec(name, path, model, tuple(fields), extension)


# Parents first: a table refers only to tables above it (and to itself: organizations, terms).
TABLES: tuple[TableSpec, ...] = (
    _spec("taxonomy", "taxonomies.csv", Taxonomy, "id name description uri version"),
    _spec(
        "taxonomy_term",
        "taxonomy_terms.csv",
        TaxonomyTerm,
        "id code name description parent_id taxonomy language taxonomy_id term_uri",
        "hl7_service_type_code hl7_service_type_display",
    ),
    _spec(
        "organization",
        "organizations.csv",
        Organization,
        "id name alternate_name description email website parent_organization_id",
        "last_modified",
    ),
    _spec(
        "program", "programs.csv", Program, "id organization_id name alternate_name description", "slug last_modified"
    ),
    _spec(
        "location",
        "locations.csv",
        Location,
        "id location_type url organization_id name alternate_name description transportation latitude longitude",
    ),
    _spec(
        "address",
        "addresses.csv",
        Address,
        "id location_id attention address_1 address_2 city region state_province postal_code country address_type",
    ),
    _spec(
        "service",
        "services.csv",
        Service,
        "id organization_id program_id name alternate_name description url email status interpretation_services "
        "application_process fees_description eligibility_description minimum_age maximum_age alert last_modified",
        "accepts_referrals",
    ),
    _spec(
        "service_area",
        "service_areas.csv",
        ServiceArea,
        "id service_id name description extent extent_type uri",
        "statewide",
    ),
    _spec("service_area_town", "service_area_towns.csv", ServiceAreaTown, "service_area_id town", extension=True),
    _spec("service_at_location", "service_at_location.csv", ServiceAtLocation, "id service_id location_id description"),
    _spec(
        "contact",
        "contacts.csv",
        Contact,
        "id organization_id service_id service_at_location_id location_id name title department email",
    ),
    _spec(
        "phone",
        "phones.csv",
        Phone,
        "id location_id service_id organization_id contact_id service_at_location_id number extension type description",
    ),
    _spec("language", "languages.csv", Language, "id service_id location_id phone_id name code note"),
    _spec(
        "schedule",
        "schedules.csv",
        Schedule,
        "id service_id location_id service_at_location_id valid_from valid_to dtstart until wkst freq interval byday "
        "description opens_at closes_at attending_type notes",
    ),
    _spec("attribute", "attributes.csv", Attribute, "id link_id taxonomy_term_id link_type link_entity value"),
    _spec(
        "referral_contact_point",
        "referral_contact_points.csv",
        ReferralContactPoint,
        "id service_id channel value audience purpose instructions",
        extension=True,
    ),
)
BY_NAME = {spec.name: spec for spec in TABLES}
# Tables whose ids other rows may name (an attribute may name a row of any of them).
REFERABLE = {spec.name for spec in TABLES if spec.table.c.get("id") is not None} - {
    "attribute",
    "referral_contact_point",
}
# Tables that may name a row of their own (a parent organization, a broader term).
SELF_REFERRING = ("organization", "taxonomy_term")
# HSDS tables this directory does not store: reported, never silently dropped.
NOT_STORED = (
    "funding",
    "cost_option",
    "required_document",
    "accessibility",
    "organization_identifier",
    "metadata",
    "meta_table_description",
    "url",
)


def table_order(name: str) -> int:
    """Where a table comes in `TABLES` (parents first)."""
    return [spec.name for spec in TABLES].index(name)


# --------------------------------------------------------------------------- full records
# How the tables nest in a full JSON record, as this API answers it (and as the import reads it).

# Nested lists and objects of a record: (key, table, the parent id their rows take).
NESTED: dict[str, list[tuple[str, str, str | None]]] = {
    "service": [
        ("organization", "organization", None),
        ("program", "program", None),
        ("phones", "phone", "service_id"),
        ("schedules", "schedule", "service_id"),
        ("service_areas", "service_area", "service_id"),
        ("service_at_locations", "service_at_location", "service_id"),
        ("languages", "language", "service_id"),
        ("contacts", "contact", "service_id"),
        ("attributes", "attribute", "link_id"),
        ("referral_contact_points", "referral_contact_point", "service_id"),
    ],
    "organization": [("phones", "phone", "organization_id"), ("locations", "location", "organization_id")],
    "service_at_location": [
        ("location", "location", None),
        ("phones", "phone", "service_at_location_id"),
        ("contacts", "contact", "service_at_location_id"),
        ("schedules", "schedule", "service_at_location_id"),
    ],
    "location": [
        ("addresses", "address", "location_id"),
        ("phones", "phone", "location_id"),
        ("languages", "language", "location_id"),
        ("contacts", "contact", "location_id"),
        ("schedules", "schedule", "location_id"),
    ],
    "contact": [("phones", "phone", "contact_id")],
    "phone": [("languages", "language", "phone_id")],
    "attribute": [("taxonomy_term", "taxonomy_term", None)],
    "taxonomy_term": [("taxonomy_detail", "taxonomy", None)],
}
# The id field by which a record names the organization, program, ... nested in it.
NAMED_BY = {
    "organization": "organization_id",
    "program": "program_id",
    "location": "location_id",
    "taxonomy_term": "taxonomy_term_id",
    "taxonomy": "taxonomy_id",
}
# Lists of a record this directory does not store (HSDS tables it leaves out, and the lists of
# records an organization or program answers with, which are read from their own tables).
NOT_STORED_LISTS = {
    "funding",
    "cost_options",
    "required_documents",
    "metadata",
    "accessibility",
    "organization_identifiers",
    "programs",
    "services",
    "attributes",
}
# Fields a record carries in another shape than the table's columns: (record field, its keys
# -> the columns they fill). A term's HL7 coding is an object of two stored extension fields.
SHAPED: dict[str, dict[str, dict[str, str]]] = {
    "taxonomy_term": {"hl7_service_type": {"code": "hl7_service_type_code", "display": "hl7_service_type_display"}},
}
# Read-only fields of this API's answers, not data: the import passes over them (a term's
# `hl7_service_type` is read through `SHAPED`).
COMPUTED = {"distance", "hl7_service_type"}
# Fields the API answers that the import does not take, with the columns that hold them: kept
# by the server and set by other routes (a verification, a capacity update).
SERVER_KEPT: dict[str, dict[str, tuple[str, ...]]] = {
    "service": {
        "assured_date": ("assured_date",),
        "assurer_email": ("assurer_email",),
        "capacities": (  # HSDS 3.1 service_capacity
            "capacity_status",
            "capacity_available",
            "capacity_maximum",
            "capacity_unit",
            "capacity_wait_days",
            "capacity_description",
            "capacity_updated",
        ),
    },
}
# Stored extension fields the API does not answer (they travel in the package only).
NOT_ANSWERED: dict[str, tuple[str, ...]] = {
    "organization": ("last_modified",),
    "service_area": ("statewide",),
    "service_area_town": ("service_area_id", "town"),
}
