"""The answers of `GET /` (what this API is) and of the liveness and readiness probes
(api/root.py); a probe that is not ready answers `schemas.errors.NotReadySchema`."""

from __future__ import annotations

from marshmallow import Schema, fields


class ApiMetaSchema(Schema):
    version = fields.String(required=True, metadata={"description": "HSDS version of this API."})
    profile = fields.URL(required=True, metadata={"description": "Where this API's HSDS profile is described."})
    openapi_url = fields.URL(required=True, metadata={"description": "The OpenAPI document of this API."})


class HealthSchema(Schema):
    status = fields.String(required=True, metadata={"description": "`ok` while the process serves requests."})


class ReadySchema(Schema):
    status = fields.String(required=True, metadata={"description": "`ready`."})
