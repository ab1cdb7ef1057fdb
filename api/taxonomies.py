"""Taxonomies and taxonomy terms: the service categories."""
import uuid

from flask.views import MethodView
from flask_smorest import Blueprint

from api.common import QUERY, page_response, session
from core import directory
from schemas.args import PageArgs, TaxonomyTermListArgs
from schemas.hsds import TaxonomySchema, TaxonomyTermDetailSchema, TaxonomyTermSchema, page_of

blp = Blueprint("taxonomies", __name__, url_prefix="/", description="Service categories.")

TaxonomyPage = page_of(TaxonomySchema, "TaxonomyPage")
TaxonomyTermPage = page_of(TaxonomyTermSchema, "TaxonomyTermPage")


@blp.route("taxonomies")
class Taxonomies(MethodView):
    @blp.arguments(PageArgs, **QUERY)
    @blp.response(200, TaxonomyPage)
    @blp.alt_response(422, description="A query parameter is invalid or unknown.")
    def get(self, args):
        """List taxonomies."""
        return page_response(directory.list_taxonomies(session(), args["page"], args["per_page"]), TaxonomySchema())


@blp.route("taxonomies/<uuid:taxonomy_id>")
class TaxonomyById(MethodView):
    @blp.response(200, TaxonomySchema)
    @blp.alt_response(404, description="No taxonomy has this id.")
    def get(self, taxonomy_id: uuid.UUID):
        """Get a taxonomy."""
        return directory.get_taxonomy(session(), taxonomy_id)


@blp.route("taxonomy_terms")
class TaxonomyTerms(MethodView):
    @blp.arguments(TaxonomyTermListArgs, **QUERY)
    @blp.response(200, TaxonomyTermPage)
    @blp.alt_response(422, description="A query parameter is invalid or unknown.")
    def get(self, args):
        """List taxonomy terms, sorted by code.

        `top_only=true` lists the top of the hierarchy; `parent_id` lists a term's children.
        Each term carries its HL7 FHIR service-type cross-walk where one fits.
        """
        page = directory.list_taxonomy_terms(
            session(), args["taxonomy_id"], args["parent_id"], args["top_only"], args["page"], args["per_page"]
        )
        return page_response(page, TaxonomyTermSchema())


@blp.route("taxonomy_terms/<uuid:term_id>")
class TaxonomyTermById(MethodView):
    @blp.response(200, TaxonomyTermDetailSchema)
    @blp.alt_response(404, description="No taxonomy term has this id.")
    def get(self, term_id: uuid.UUID):
        """Get a taxonomy term with its taxonomy."""
        return directory.get_taxonomy_term(session(), term_id)
