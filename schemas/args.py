"""Query-string arguments of the list endpoints.

Unknown parameters are rejected with a 422 so that a misspelt filter never silently returns
everything. A parameter given several times is ORed (`?organization_id=a&organization_id=b`).
"""
from __future__ import annotations

from datetime import timezone

from marshmallow import RAISE, Schema, fields, validate

from models.vocab import CONTACT_AUDIENCES, CONTACT_CHANNELS, CONTACT_PURPOSES, SERVICE_STATUSES

MAX_PAGE_SIZE = 100


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


class ProgramListArgs(PageArgs):
    organization_id = _ids("Only programs of these organizations.")


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
