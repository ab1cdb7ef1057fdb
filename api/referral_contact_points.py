"""Referral contact points: who to contact to refer a child to a service, and how."""

from flask.views import MethodView
from flask_smorest import Blueprint

from api.common import QUERY, page_response, session
from core import directory
from schemas.args import ReferralContactPointListArgs
from schemas.hsds import ReferralContactPointSchema, page_of

blp = Blueprint(
    "referral_contact_points",
    __name__,
    url_prefix="/referral-contact-points",
    description="How to refer a child to each service.",
)

ReferralContactPointPage = page_of(ReferralContactPointSchema, "ReferralContactPointPage")


@blp.route("")
class ReferralContactPoints(MethodView):
    @blp.arguments(ReferralContactPointListArgs(), **QUERY)
    @blp.response(200, ReferralContactPointPage)
    @blp.alt_response(422, description="A query parameter is invalid or unknown.")
    def get(self, args):
        """List referral contact points.

        Filter by `service_id`, `program_id`, `audience` (families, health_care_providers,
        community_partners), `channel` (phone, email, web, fax, in_person) and `purpose`
        (referral, information, advocacy). A contact point whose purpose is `information`
        is a general line, not a referral intake.
        """
        filters = directory.ContactPointFilters(
            service_ids=args["service_id"],
            program_ids=args["program_id"],
            audiences=args["audience"],
            channels=args["channel"],
            purposes=args["purpose"],
        )
        page = directory.list_referral_contact_points(session(), filters, args["page"], args["per_page"])
        return page_response(page, ReferralContactPointSchema())
