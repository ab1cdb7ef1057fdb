"""The write routes of records other than services (organizations, programs, taxonomy terms,
services at locations), all alike: POST creates, PUT replaces, PATCH merge-patches, each
checked by the rules of `flask hsds import` (core.editing.save_record), with If-Match."""

from __future__ import annotations

import uuid

from flask import current_app, g, request
from flask_smorest import abort

from api.common import session
from api.services import if_match, json_body
from core import editing

ADMIN_ONLY = (editing.ADMIN,)
STAFF = (editing.WRITE, editing.ADMIN)


def errors(kind: str) -> tuple[tuple[int, str], ...]:
    return (
        (404, f"No {kind} has this id."),
        (409, f"A {kind} with this id exists (POST)."),
        (412, "If-Match names an older version of the record: read it again."),
        (422, "The record breaks a rule; `errors` names each field at fault. Nothing was changed."),
        (428, "No If-Match: send the record's ETag."),
    )


def if_match_doc() -> dict:
    return {
        "in": "header",
        "name": "If-Match",
        "required": False,
        "schema": {"type": "string"},
        "description": "The record's ETag (required for PUT and PATCH).",
    }


def write(kind: str, schema, record_id: uuid.UUID | None, action: str):
    """Run one write and answer the record as a read would, with its new ETag."""
    if action == "patch" and request.mimetype != "application/merge-patch+json":
        abort(415, message="Send a merge patch with Content-Type: application/merge-patch+json.")

    def dump(record) -> dict:
        return schema().dump(record)

    saved = editing.save_record(session(), g.client, kind, record_id, json_body(), if_match(), dump, action)
    record_id = saved.id
    session().commit()
    fresh = session().get(type(saved), record_id)
    headers = {"ETag": f'"{editing.record_etag(dump(fresh))}"', "Cache-Control": "no-store"}
    if action == "create":
        headers["Location"] = f"{request.root_path}/{kind}s/{record_id}"
    return fresh, 201 if action == "create" else 200, headers


def remove(kind: str, schema, record_id: uuid.UUID):
    """Run one delete (If-Match required) and answer 204."""

    def dump(record) -> dict:
        return schema().dump(record)

    editing.delete_record(session(), g.client, kind, record_id, if_match(), dump)
    session().commit()
    return current_app.response_class(status=204, headers={"Cache-Control": "no-store"})


def delete_errors(kind: str, referenced_by: str | None) -> tuple[tuple[int, str], ...]:
    conflict = (
        (
            (
                409,
                f"The {kind} is still referenced ({referenced_by}); the message and `errors.referenced_by` "
                "say by what and how many.",
            ),
        )
        if referenced_by
        else ()
    )
    return (
        (404, f"No {kind} has this id."),
        *conflict,
        (412, "If-Match names an older version of the record: read it again."),
        (428, "No If-Match: send the record's ETag."),
    )


def record_etag(schema, record) -> None:
    """Give a record read its own ETag (a digest of what it shows), for If-Match."""
    g.record_etag = editing.record_etag(schema().dump(record))
