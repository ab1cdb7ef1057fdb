"""The field catalogue (`core.hsds.profile.TABLES`) is the one list of the HSDS fields each table
stores, and everything that names those fields agrees with it, both ways:

- HSDS 3.0 itself (its `datapackage.json`): a field marked HSDS is one of the table's HSDS
  fields, a field marked as an extension is not, and every HSDS table left out is reported as
  not stored;
- the models: every catalogue field is a column of the table, and every column of a catalogue
  table is a catalogue field or a field the server keeps (`SERVER_KEPT`);
- the response schemas (`schemas/hsds.py`): every catalogue field is answered (under its own
  name, or in the shape `SHAPED` gives it) unless `NOT_ANSWERED` says so, every plain field a
  schema answers is a catalogue field, a shaped one, a server-kept one or a computed one, and
  every nested record a schema answers is a relation of the model.

So a field added to a model, a schema or the catalogue alone fails here, with what is missing.
Pure: no database, one engine.
"""

from __future__ import annotations

import json

import pytest
from marshmallow import Schema, fields
from sqlalchemy import inspect

from core.hsds.profile import (
    COMPUTED,
    HSDS_VERSION,
    NOT_ANSWERED,
    NOT_STORED,
    PACKAGE_VERSION,
    SERVER_KEPT,
    SHAPED,
    TABLES,
    TableSpec,
)
from schemas import hsds
from tests.conftest import HSDS_REFERENCE

# The response schema that answers the most of each table (None: the API does not answer it).
SCHEMAS: dict[str, type[Schema] | None] = {
    "taxonomy": hsds.TaxonomySchema,
    "taxonomy_term": hsds.TaxonomyTermDetailSchema,
    "organization": hsds.OrganizationSchema,
    "program": hsds.ProgramSchema,
    "location": hsds.LocationSchema,
    "address": hsds.AddressSchema,
    "service": hsds.ServiceSchema,
    "service_area": hsds.ServiceAreaSchema,
    "service_area_town": None,
    "service_at_location": hsds.ServiceAtLocationSchema,
    "contact": hsds.ContactSchema,
    "phone": hsds.PhoneSchema,
    "language": hsds.LanguageSchema,
    "schedule": hsds.ScheduleSchema,
    "attribute": hsds.AttributeSchema,
    "referral_contact_point": hsds.ReferralContactPointSchema,
}
SPECS = {spec.name: spec for spec in TABLES}


def hsds_package() -> dict[str, set[str]]:
    """HSDS 3.0's own tables and their fields, from the package of its examples."""
    package = json.loads((HSDS_REFERENCE / "examples" / "csv" / "datapackage.json").read_text())
    return {resource["name"]: {f["name"] for f in resource["schema"]["fields"]} for resource in package["resources"]}


def is_nested(field: fields.Field) -> bool:
    return isinstance(field, fields.Nested) or (
        isinstance(field, fields.List) and isinstance(field.inner, fields.Nested)
    )


def answered(schema: type[Schema]) -> tuple[set[str], set[str]]:
    """(the plain fields a schema answers, the nested records it answers), by answered name."""
    plain, nested = set(), set()
    for name, field in schema().fields.items():
        (nested if is_nested(field) else plain).add(field.data_key or name)
    return plain, nested


def test_every_table_has_its_schema_named_here():
    assert set(SCHEMAS) == set(SPECS)


@pytest.mark.parametrize("spec", TABLES, ids=lambda spec: spec.name)
def test_the_catalogue_marks_hsds_fields_and_extensions_as_hsds_3_0_does(spec: TableSpec):
    official = hsds_package()
    if spec.extension:
        assert spec.name not in official
        assert all(f.extension for f in spec.fields)
        return
    assert spec.name in official, f"{spec.name} is not an HSDS {HSDS_VERSION} table: mark it as an extension"
    fields_of_table = official[spec.name]
    assert [f.name for f in spec.fields if not f.extension and f.name not in fields_of_table] == []
    assert [f.name for f in spec.fields if f.extension and f.name in fields_of_table] == []


def test_the_hsds_tables_left_out_are_reported_as_not_stored():
    assert set(hsds_package()) - set(SPECS) <= set(NOT_STORED)
    assert not set(NOT_STORED) & set(SPECS)


@pytest.mark.parametrize("spec", TABLES, ids=lambda spec: spec.name)
def test_the_model_stores_the_catalogue_fields_and_only_those(spec: TableSpec):
    columns = {column.key for column in spec.table.columns}
    kept = {column for held in SERVER_KEPT.get(spec.name, {}).values() for column in held}
    assert sorted(spec.names - columns) == [], "catalogue fields without a column"
    assert sorted(columns - spec.names - kept) == [], "columns neither in the catalogue nor kept by the server"
    assert not spec.names & kept


@pytest.mark.parametrize("spec", TABLES, ids=lambda spec: spec.name)
def test_the_response_schema_answers_the_catalogue_fields(spec: TableSpec):
    schema = SCHEMAS[spec.name]
    not_answered = set(NOT_ANSWERED.get(spec.name, ()))
    assert not_answered <= spec.names
    if schema is None:
        assert not_answered == spec.names
        return
    plain, _ = answered(schema)
    shaped = {column: name for name, parts in SHAPED.get(spec.name, {}).items() for column in parts.values()}
    missing = [name for name in sorted(spec.names - not_answered) if (shaped.get(name) or name) not in plain]
    assert missing == [], f"{schema.__name__} does not answer these catalogue fields"
    assert sorted(not_answered & plain) == [], "fields declared not answered are answered"


@pytest.mark.parametrize("spec", TABLES, ids=lambda spec: spec.name)
def test_every_field_a_response_schema_answers_is_catalogued(spec: TableSpec):
    schema = SCHEMAS[spec.name]
    if schema is None:
        return
    plain, nested = answered(schema)
    known = spec.names | set(SHAPED.get(spec.name, {})) | set(SERVER_KEPT.get(spec.name, {})) | COMPUTED
    assert sorted(plain - known) == [], f"{schema.__name__} answers fields the catalogue does not list"
    relations = set(inspect(spec.model).relationships.keys())
    assert sorted(nested - relations) == [], (
        f"{schema.__name__} nests records that are no relation of {spec.model.__name__}"
    )


def test_the_hsds_version_is_named_once():
    assert HSDS_VERSION == "3.0"
    # HSDS's own datapackage.json names the full release.
    official = json.loads((HSDS_REFERENCE / "examples" / "csv" / "datapackage.json").read_text())
    assert PACKAGE_VERSION == official["version"]
