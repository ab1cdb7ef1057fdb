"""Webhooks: signed, id-only notifications of referral events."""
from __future__ import annotations

import uuid

from flask import g, jsonify
from flask.views import MethodView
from flask_smorest import Blueprint

from api.auth import documented, require
from api.common import QUERY, page_response, session
from core import webhooks
from schemas.args import PageArgs
from schemas.hsds import page_of
from schemas.referrals import WebhookCreatedOut, WebhookDeliveryOut, WebhookIn, WebhookOut

blp = Blueprint("webhooks", __name__, url_prefix="/webhooks", description="Referral event notifications (API key required).")

WebhookPage = page_of(WebhookOut, "WebhookPage")
DeliveryPage = page_of(WebhookDeliveryOut, "WebhookDeliveryPage")
SCOPES = ("referrals:submit", "referrals:manage")


@blp.after_request
def no_store(response):
    response.headers["Cache-Control"] = "no-store"
    return response


@blp.route("")
class Webhooks(MethodView):
    @documented(blp, (422, "A field is invalid or unknown."))
    @require(*SCOPES)
    @blp.arguments(WebhookIn)
    @blp.response(201, WebhookCreatedOut)
    def post(self, data):
        """Register a URL for referral events; the signing secret is in this response only.

        Each delivery is a POST of `{event_id, event_type, referral_id, status, occurred_at}`
        (no personal data) with `X-OCCH-Signature: t=<unix time>,v1=<hex HMAC-SHA256 of
        "<t>.<body>" with the secret>`. Failed deliveries are retried with exponential
        backoff; delivery is at least once, so drop duplicates by `event_id`.
        """
        subscription = webhooks.create_subscription(session(), g.client, data["url"], data["events"])
        session().commit()
        response = jsonify(WebhookCreatedOut().dump(subscription))
        response.status_code = 201
        return response

    @documented(blp, (422, "A query parameter is invalid or unknown."))
    @require(*SCOPES)
    @blp.arguments(PageArgs, **QUERY)
    @blp.response(200, WebhookPage)
    def get(self, args):
        """List this key's webhooks."""
        return page_response(webhooks.list_subscriptions(session(), g.client, args["page"], args["per_page"]), WebhookOut())


@blp.route("/<uuid:webhook_id>")
class WebhookById(MethodView):
    @documented(blp, (404, "No webhook of this key has this id."))
    @require(*SCOPES)
    @blp.response(204)
    def delete(self, webhook_id: uuid.UUID):
        """Stop a webhook. Pending deliveries to it are still attempted."""
        webhooks.own_subscription(session(), g.client, webhook_id).active = False
        session().commit()


@blp.route("/<uuid:webhook_id>/deliveries")
class WebhookDeliveries(MethodView):
    @documented(blp, (404, "No webhook of this key has this id."), (422, "A query parameter is invalid or unknown."))
    @require(*SCOPES)
    @blp.arguments(PageArgs, **QUERY)
    @blp.response(200, DeliveryPage)
    def get(self, args, webhook_id: uuid.UUID):
        """Every delivery to this webhook and every attempt at it (time, status, duration)."""
        page = webhooks.deliveries(session(), g.client, webhook_id, args["page"], args["per_page"])
        return page_response(page, WebhookDeliveryOut())
