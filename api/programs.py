"""Programs of the Office for Community Child Health (Help Me Grow, Healthy Homes, ...)."""

from flask.views import MethodView
from flask_smorest import Blueprint

from api import writes
from api.auth import keyed
from api.common import QUERY, page_response, session
from core import directory
from schemas.args import ProgramListArgs
from schemas.hsds import ProgramSchema, page_of

blp = Blueprint("programs", __name__, url_prefix="/programs", description="Programs and their services.")

ProgramPage = page_of(ProgramSchema, "ProgramPage")


@blp.route("")
class Programs(MethodView):
    @blp.arguments(ProgramListArgs(), **QUERY)
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

    @keyed(blp, *writes.ADMIN_ONLY, errors=writes.errors("program"))
    @blp.doc(requestBody={"required": True, "content": {"application/json": {"schema": {"type": "object"}}}})
    @blp.response(201, ProgramSchema)
    def post(self):
        """Create a program from its record (a `directory:admin` key); checked by the rules of `flask hsds import`."""
        return writes.write("program", ProgramSchema, None, "create")


@blp.route("/<string:id_or_slug>")
class ProgramByIdOrSlug(MethodView):
    @blp.response(200, ProgramSchema)
    @blp.alt_response(404, description="No program has this id or slug.")
    def get(self, id_or_slug: str):
        """Get a program by id or by slug (`/programs/help-me-grow`)."""
        program = directory.get_program(session(), id_or_slug)
        writes.record_etag(ProgramSchema, program)
        return program

    @keyed(blp, *writes.ADMIN_ONLY, errors=writes.errors("program"))
    @blp.doc(
        parameters=[writes.if_match_doc()],
        requestBody={"required": True, "content": {"application/json": {"schema": {"type": "object"}}}},
    )
    @blp.response(200, ProgramSchema)
    def put(self, id_or_slug: str):
        """Replace a program with its full record (a `directory:admin` key).

        Checked by the rules of `flask hsds import`; send the record's `ETag` as `If-Match`.
        """
        return writes.write("program", ProgramSchema, directory.get_program(session(), id_or_slug).id, "replace")

    @keyed(blp, *writes.ADMIN_ONLY, errors=writes.errors("program"))
    @blp.doc(
        parameters=[writes.if_match_doc()],
        requestBody={"required": True, "content": {"application/merge-patch+json": {"schema": {"type": "object"}}}},
    )
    @blp.response(200, ProgramSchema)
    def patch(self, id_or_slug: str):
        """Change some fields of a program: a JSON Merge Patch (RFC 7396) of its record (a `directory:admin` key)."""
        return writes.write("program", ProgramSchema, directory.get_program(session(), id_or_slug).id, "patch")

    @keyed(
        blp,
        *writes.ADMIN_ONLY,
        errors=writes.delete_errors("program", "by its services, referrals, API keys or staff accounts"),
    )
    @blp.doc(parameters=[writes.if_match_doc()])
    @blp.response(204)
    def delete(self, id_or_slug: str):
        """Delete a program (a `directory:admin` key).

        Refused with 409 while services, referrals, API keys or staff accounts point at it; the
        message says which and how many. Send the record's `ETag` as `If-Match`.
        """
        return writes.remove("program", ProgramSchema, directory.get_program(session(), id_or_slug).id)
