"""What the resource modules share: the session and the list envelope."""

from __future__ import annotations

from collections.abc import Iterable

from flask import Response, current_app, jsonify, request, stream_with_context
from marshmallow import RAISE, Schema
from sqlalchemy.orm import Session

from api.extensions import db
from core.paging import Page


def session() -> Session:
    """The Session of the current app context (db.session is a scoped proxy that hands every
    call to this same Session; core's functions take the Session itself)."""
    return db.session()


def count_limit() -> int:
    """How many matches a service list counts exactly (EXACT_COUNT_LIMIT; 0: all)."""
    return current_app.config["EXACT_COUNT_LIMIT"]


def page_response(page: Page, item_schema: Schema | None):
    """The HSDS `Page` envelope with `contents` dumped by `item_schema` (None: the contents are
    JSON-ready records already, as core.directory.service_rows makes them)."""
    body = page.envelope
    if item_schema is not None:
        body["contents"] = item_schema.dump(page.contents, many=True)
    return jsonify(body)


NDJSON = "application/x-ndjson"


def ndjson_response(batches: Iterable[list], item_schema: Schema | None) -> Response:
    """Every record of `batches` (lists of records, read lazily from the database) as
    newline-delimited JSON: one record a line, no envelope, streamed as it is read. `item_schema`
    dumps each batch (None: the records are JSON-ready already)."""

    def lines():
        for batch in batches:
            records = item_schema.dump(batch, many=True) if item_schema is not None else batch
            yield "".join(current_app.json.dumps(record, separators=(",", ":")) + "\n" for record in records)

    return Response(stream_with_context(lines()), mimetype=NDJSON)


def ndjson_doc(item_schema, what: str) -> dict:
    """The `alt_response` arguments documenting a list's `format=ndjson` answer."""
    return {
        "schema": item_schema,
        "content_type": NDJSON,
        "description": f"`application/json`: one page of {what} records in the `Page` envelope. With "
        f"`format=ndjson`, `application/x-ndjson`: every matching {what} record, streamed one JSON record a line "
        "(the shape of the page's `contents` items), with no envelope and no paging.",
        "success": True,
    }


# Query arguments: unknown parameters are a 422, never silently ignored. Their schemas are
# passed to `blp.arguments` as instances (they keep no state between loads), so that no schema
# is built per request.
QUERY = {"location": "query", "unknown": RAISE}


# Languages the directory can answer in (content translations, advisories): `lang=es` or
# `Accept-Language: es` asks for Spanish.
LANGUAGES = ("en", "es")


def requested_language(args: dict | None = None) -> str | None:
    """The language the client asked for: `lang` if given, else the best of `Accept-Language`
    among LANGUAGES; None when it asked for none of them."""
    lang = (args or {}).get("lang") or request.args.get("lang")
    if lang:
        return lang.lower() if lang.lower() in LANGUAGES else None
    if request.accept_languages:
        return request.accept_languages.best_match(LANGUAGES)
    return None
