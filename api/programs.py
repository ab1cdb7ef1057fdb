"""Programs of the Office for Community Child Health (Help Me Grow, Healthy Homes, ...)."""
from flask.views import MethodView
from flask_smorest import Blueprint

from api.common import QUERY, page_response, session
from core import directory
from schemas.args import ProgramListArgs
from schemas.hsds import ProgramSchema, page_of

blp = Blueprint("programs", __name__, url_prefix="/programs", description="Programs and their services.")

ProgramPage = page_of(ProgramSchema, "ProgramPage")


@blp.route("")
class Programs(MethodView):
    @blp.arguments(ProgramListArgs, **QUERY)
    @blp.response(200, ProgramPage)
    @blp.alt_response(422, description="A query parameter is invalid or unknown.")
    def get(self, args):
        """List programs, each with its organization and services.

        Sorted by name; with `search`, the programs whose active services match the words,
        best match first.
        """
        page = directory.list_programs(
            session(), args["organization_id"], args["page"], args["per_page"], args.get("search")
        )
        return page_response(page, ProgramSchema())


@blp.route("/<string:id_or_slug>")
class ProgramByIdOrSlug(MethodView):
    @blp.response(200, ProgramSchema)
    @blp.alt_response(404, description="No program has this id or slug.")
    def get(self, id_or_slug: str):
        """Get a program by id or by slug (`/programs/help-me-grow`)."""
        return directory.get_program(session(), id_or_slug)
