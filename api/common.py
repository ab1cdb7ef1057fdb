"""What the resource modules share: the session and the list envelope."""
from __future__ import annotations

from flask import jsonify
from marshmallow import RAISE, Schema

from api.extensions import db
from core.paging import Page


def session():
    return db.session


def page_response(page: Page, item_schema: Schema | None):
    """The HSDS `Page` envelope with `contents` dumped by `item_schema` (None: the contents are
    JSON-ready records already, as core.directory.service_rows makes them)."""
    body = page.envelope
    if item_schema is not None:
        body["contents"] = item_schema.dump(page.contents, many=True)
    return jsonify(body)


# Query arguments: unknown parameters are a 422, never silently ignored.
QUERY = {"location": "query", "unknown": RAISE}
