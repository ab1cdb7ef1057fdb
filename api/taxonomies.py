"""Taxonomies and taxonomy terms: the service categories."""

import uuid

from flask.views import MethodView
from flask_smorest import Blueprint

from api import writes
from api.auth import keyed
from api.common import QUERY, ndjson_doc, ndjson_response, page_response, session
from core import directory
from schemas.args import TaxonomyListArgs, TaxonomyTermListArgs
from schemas.hsds import TaxonomySchema, TaxonomyTermDetailSchema, TaxonomyTermSchema, page_of

blp = Blueprint("taxonomies", __name__, url_prefix="/", description="Service categories.")

TaxonomyPage = page_of(TaxonomySchema, "TaxonomyPage")
TaxonomyTermPage = page_of(TaxonomyTermSchema, "TaxonomyTermPage")


@blp.route("taxonomies")
class Taxonomies(MethodView):
    @blp.arguments(TaxonomyListArgs(), **QUERY)
    @blp.response(200, TaxonomyPage)
    @blp.alt_response(200, **ndjson_doc(TaxonomySchema, "taxonomy"))
    @blp.alt_response(422, description="A query parameter is invalid or unknown.")
    def get(self, args):
        """List taxonomies, sorted by name.

        `search` keeps those whose name or description holds every word. `format=ndjson`
        streams every match, one record a line, with no envelope and no paging.
        """
        if args["format"] == "ndjson":
            return ndjson_response(directory.stream_taxonomies(session(), args.get("search")), TaxonomySchema())
        page = directory.list_taxonomies(session(), args["page"], args["per_page"], args.get("search"))
        return page_response(page, TaxonomySchema())


@blp.route("taxonomies/<uuid:taxonomy_id>")
class TaxonomyById(MethodView):
    @blp.response(200, TaxonomySchema)
    @blp.alt_response(404, description="No taxonomy has this id.")
    def get(self, taxonomy_id: uuid.UUID):
        """Get a taxonomy."""
        return directory.get_taxonomy(session(), taxonomy_id)


@blp.route("taxonomy_terms")
class TaxonomyTerms(MethodView):
    @blp.arguments(TaxonomyTermListArgs(), **QUERY)
    @blp.response(200, TaxonomyTermPage)
    @blp.alt_response(200, **ndjson_doc(TaxonomyTermSchema, "taxonomy term"))
    @blp.alt_response(422, description="A query parameter is invalid or unknown.")
    def get(self, args):
        """List taxonomy terms, sorted by code.

        `top_only=true` lists the top of the hierarchy (terms with no parent); `parent_id` lists
        a term's children; `search` keeps the terms whose name, code or description holds every
        word. Filters combine with AND; a filter repeated matches any of its values. Each term
        carries its HL7 FHIR service-type cross-walk where one fits. `format=ndjson` streams
        every match, one record a line, with no envelope and no paging.
        """
        filters = directory.TermFilters(
            taxonomy_ids=args["taxonomy_id"],
            parent_ids=args["parent_id"],
            top_only=args["top_only"],
            search=args.get("search"),
        )
        if args["format"] == "ndjson":
            return ndjson_response(directory.stream_taxonomy_terms(session(), filters), TaxonomyTermSchema())
        page = directory.list_taxonomy_terms(session(), filters, args["page"], args["per_page"])
        return page_response(page, TaxonomyTermSchema())

    @keyed(blp, *writes.ADMIN_ONLY, errors=writes.errors("taxonomy term"))
    @blp.doc(requestBody={"required": True, "content": {"application/json": {"schema": {"type": "object"}}}})
    @blp.response(201, TaxonomyTermDetailSchema)
    def post(self):
        """Create a taxonomy term from its record (a `directory:admin` key).

        Checked by the rules of `flask hsds import`."""
        return writes.write("taxonomy_term", TaxonomyTermDetailSchema, None, "create")


@blp.route("taxonomy_terms/<uuid:term_id>")
class TaxonomyTermById(MethodView):
    @blp.response(200, TaxonomyTermDetailSchema)
    @blp.alt_response(404, description="No taxonomy term has this id.")
    def get(self, term_id: uuid.UUID):
        """Get a taxonomy term with its taxonomy."""
        term = directory.get_taxonomy_term(session(), term_id)
        writes.record_etag(TaxonomyTermDetailSchema, term)
        return term

    @keyed(blp, *writes.ADMIN_ONLY, errors=writes.errors("taxonomy term"))
    @blp.doc(
        parameters=[writes.if_match_doc()],
        requestBody={"required": True, "content": {"application/json": {"schema": {"type": "object"}}}},
    )
    @blp.response(200, TaxonomyTermDetailSchema)
    def put(self, term_id: uuid.UUID):
        """Replace a taxonomy term with its full record (a `directory:admin` key).

        Checked by the rules of `flask hsds import`; send the record's `ETag` as `If-Match`.
        """
        return writes.write("taxonomy_term", TaxonomyTermDetailSchema, term_id, "replace")

    @keyed(blp, *writes.ADMIN_ONLY, errors=writes.errors("taxonomy term"))
    @blp.doc(
        parameters=[writes.if_match_doc()],
        requestBody={"required": True, "content": {"application/merge-patch+json": {"schema": {"type": "object"}}}},
    )
    @blp.response(200, TaxonomyTermDetailSchema)
    def patch(self, term_id: uuid.UUID):
        """Change some fields of a taxonomy term: a JSON Merge Patch (RFC 7396) of its record.

        A `directory:admin` key."""
        return writes.write("taxonomy_term", TaxonomyTermDetailSchema, term_id, "patch")

    @keyed(
        blp,
        *writes.ADMIN_ONLY,
        errors=writes.delete_errors("taxonomy term", "records categorised by it, or terms below it"),
    )
    @blp.doc(parameters=[writes.if_match_doc()])
    @blp.response(204)
    def delete(self, term_id: uuid.UUID):
        """Delete a taxonomy term (a `directory:admin` key).

        Refused with 409 while records are categorised by it or terms sit below it; the message
        says which and how many. Send the record's `ETag` as `If-Match`.
        """
        return writes.remove("taxonomy_term", TaxonomyTermDetailSchema, term_id)
