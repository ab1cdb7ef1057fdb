"""FHIR search arguments, and the shapes of FHIR resources for the API documentation.

FHIR resources are built as dicts by `core.fhir`; the schemas below only describe them in
openapi.yaml. Search parameters keep their FHIR names (`service-category`, `_count`); an
unknown parameter is an error (400), never silently ignored.
"""
from __future__ import annotations

from marshmallow import INCLUDE, RAISE, Schema, fields, validate

FORMATS = ("json", "application/json", "application/fhir+json")


def _tokens(description: str, name: str | None = None):
    return fields.List(
        fields.String(validate=validate.Length(min=1, max=255)),
        load_default=list,
        data_key=name,
        metadata={"description": description},
    )


class FhirSearchArgs(Schema):
    class Meta:
        unknown = RAISE

    _count = fields.Integer(
        data_key="_count",
        load_default=20,
        validate=validate.Range(min=1, max=100),
        metadata={"description": "Entries per page, 1 to 100 (default 20)."},
    )
    _page = fields.Integer(
        data_key="_page",
        load_default=1,
        validate=validate.Range(min=1, max=100_000),
        metadata={"description": "Page number, from 1; follow the Bundle's `next` link rather than building it."},
    )
    _format = fields.String(
        data_key="_format", validate=validate.OneOf(FORMATS), metadata={"description": "JSON only."}
    )
    _lastUpdated = _tokens(
        "When the record last changed: a FHIR date with a prefix (`gt2026-01-01T00:00:00Z`, `ge2026-01`); "
        "repeat for a range.",
        "_lastUpdated",
    )


class HealthcareServiceSearchArgs(FhirSearchArgs):
    name = _tokens("The name, or a word of it, starts with this (case-insensitive).")
    name_contains = _tokens("The name contains this.", "name:contains")
    name_exact = _tokens("The name is exactly this.", "name:exact")
    service_category = _tokens(
        "A category code (`occh-healthy-housing` or `urn:uuid:<taxonomy id>|occh-healthy-housing`), with every "
        "category below it; comma-separated codes are ORed.",
        "service-category",
    )
    service_type = _tokens(
        "An HL7 service-type code (`http://terminology.hl7.org/CodeSystem/service-type|128` or `128`).",
        "service-type",
    )
    organization = _tokens("`Organization/<id>` of the providing program or organization; comma-separated ids are ORed.")
    active = fields.Boolean(metadata={"description": "true: active services only; false: the others. All when absent."})
    _id = _tokens("Service ids, comma-separated.", "_id")


class TaskSearchArgs(FhirSearchArgs):
    owner = _tokens("`Organization/<id>` of the receiving program; comma-separated ids are ORed.")
    status = _tokens("Task status codes (`requested`, `accepted`, ...), comma-separated.")


class FhirResourceSchema(Schema):
    """Any FHIR resource: `resourceType`, `id` and the resource's own elements."""

    class Meta:
        unknown = INCLUDE

    resourceType = fields.String(required=True)
    id = fields.String()
    meta = fields.Dict()


class FhirIssueSchema(Schema):
    severity = fields.String(metadata={"enum": ["fatal", "error", "warning", "information"]})
    code = fields.String()
    diagnostics = fields.String()
    expression = fields.List(fields.String())


class FhirOperationOutcomeSchema(Schema):
    resourceType = fields.String(metadata={"enum": ["OperationOutcome"]})
    issue = fields.List(fields.Nested(FhirIssueSchema))


class FhirBundleLinkSchema(Schema):
    relation = fields.String(metadata={"enum": ["self", "first", "previous", "next", "last"]})
    url = fields.String()


class FhirBundleEntrySchema(Schema):
    fullUrl = fields.String()
    resource = fields.Nested(FhirResourceSchema)
    search = fields.Dict()
    request = fields.Dict()
    response = fields.Dict()


class FhirBundleSchema(Schema):
    resourceType = fields.String(metadata={"enum": ["Bundle"]})
    type = fields.String(metadata={"enum": ["searchset", "transaction", "transaction-response"]})
    total = fields.Integer()
    link = fields.List(fields.Nested(FhirBundleLinkSchema))
    entry = fields.List(fields.Nested(FhirBundleEntrySchema))
