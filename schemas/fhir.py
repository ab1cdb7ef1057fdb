"""FHIR search arguments, and the shapes of FHIR resources for the API documentation.

FHIR resources are built as dicts by `core.fhir`; the schemas below only describe them in
openapi.yaml. Search parameters keep their FHIR names (`service-category`, `_count`); an
unknown parameter is an error (400), never silently ignored.
"""

from __future__ import annotations

from marshmallow import INCLUDE, RAISE, Schema, fields, validate

from schemas.text import SafeText

FORMATS = ("json", "application/json", "application/fhir+json")


def _tokens(description: str, name: str | None = None):
    return fields.List(
        SafeText(validate=validate.Length(min=1, max=255)),
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
    _format = SafeText(data_key="_format", validate=validate.OneOf(FORMATS), metadata={"description": "JSON only."})
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
    organization = _tokens(
        "`Organization/<id>` of the providing program or organization; comma-separated ids are ORed."
    )
    active = fields.Boolean(metadata={"description": "true: active services only; false: the others. All when absent."})
    _id = _tokens("Service ids, comma-separated.", "_id")


class TaskSearchArgs(FhirSearchArgs):
    owner = _tokens("`Organization/<id>` of the receiving program; comma-separated ids are ORed.")
    status = _tokens("Task status codes (`requested`, `accepted`, ...), comma-separated.")


class FhirResourceSchema(Schema):
    """Any FHIR resource: `resourceType`, `id` and the resource's own elements."""

    class Meta:
        unknown = INCLUDE

    resourceType = SafeText(required=True)
    id = SafeText()
    meta = fields.Dict()


class FhirIssueSchema(Schema):
    severity = SafeText(metadata={"enum": ["fatal", "error", "warning", "information"]})
    code = SafeText()
    diagnostics = SafeText()
    expression = fields.List(SafeText())


class FhirOperationOutcomeSchema(Schema):
    resourceType = SafeText(metadata={"enum": ["OperationOutcome"]})
    issue = fields.List(fields.Nested(FhirIssueSchema))


class FhirBundleLinkSchema(Schema):
    relation = SafeText(metadata={"enum": ["self", "first", "previous", "next", "last"]})
    url = SafeText()


class FhirBundleEntrySchema(Schema):
    fullUrl = SafeText()
    resource = fields.Nested(FhirResourceSchema)
    search = fields.Dict()
    request = fields.Dict()
    response = fields.Dict()


class FhirBundleSchema(Schema):
    resourceType = SafeText(metadata={"enum": ["Bundle"]})
    type = SafeText(metadata={"enum": ["searchset", "transaction", "transaction-response"]})
    total = fields.Integer()
    link = fields.List(fields.Nested(FhirBundleLinkSchema))
    entry = fields.List(fields.Nested(FhirBundleEntrySchema))
