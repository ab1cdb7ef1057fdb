"""The error envelope of every non-FHIR error answer (api/errors.py writes it)."""

from __future__ import annotations

from marshmallow import Schema, fields


class ErrorSchema(Schema):
    code = fields.Integer(required=True, metadata={"description": "The HTTP status."})
    status = fields.String(required=True, metadata={"description": "The HTTP status phrase."})
    error = fields.String(
        required=True, metadata={"description": "A stable machine-readable name: `not_found`, `validation_error`, ..."}
    )
    message = fields.String(required=True, metadata={"description": "What went wrong, for people; never echoes input."})
    errors = fields.Dict(
        metadata={"description": "The fields at fault (422), by location (`json`, `query`, `headers`) and name."}
    )


class NotReadySchema(ErrorSchema):
    reason = fields.String(required=True, metadata={"description": "`database_unreachable` or `migrations_pending`."})
