"""Webhooks: signed, id-only notifications of referral events."""

from __future__ import annotations

import uuid

from flask import current_app, g, jsonify
from flask.views import MethodView
from flask_smorest import Blueprint

from api.auth import documented, require
from api.common import QUERY, page_response, session
from core import webhooks
from schemas.args import PageArgs
from schemas.hsds import page_of
from schemas.referrals import WebhookCreatedOut, WebhookDeliveryOut, WebhookIn, WebhookOut

blp = Blueprint(
    "webhooks", __name__, url_prefix="/webhooks", description="Referral event notifications (API key required)."
)

WebhookPage = page_of(WebhookOut, "WebhookPage")
DeliveryPage = page_of(WebhookDeliveryOut, "WebhookDeliveryPage")
SCOPES = ("referrals:submit", "referrals:manage")


def policy() -> webhooks.Policy:
    return webhooks.Policy.from_config(current_app.config)


@blp.after_request
def no_store(response):
    response.headers["Cache-Control"] = "no-store"
    return response


@blp.route("")
class Webhooks(MethodView):
    @documented(
        blp,
        (409, "This key already has the most webhooks a key may have."),
        (422, "A field is invalid or unknown, or the URL is not an https URL of a public address."),
    )
    @require(*SCOPES)
    @blp.arguments(WebhookIn)
    @blp.response(201, WebhookCreatedOut)
    def post(self, data):
        """Register a URL for referral events; the signing secret is in this response only.

        The URL must be `https` and its host a public address (a name that resolves to a
        loopback, private, link-local or other internal address is refused, now and at every
        delivery). `events` lists the event types wanted; leave it out for all of them.
        Each delivery is a POST of `{event_id, event_type, referral_id, status, occurred_at}`
        (no personal data) with `X-OCCH-Signature: t=<unix time>,v1=<hex HMAC-SHA256 of
        "<t>.<body>" with the secret>`. Redirects are not followed. Failed deliveries are
        retried with exponential backoff; delivery is at least once, so drop duplicates by
        `event_id`. A webhook whose every attempt has failed for a day is disabled.
        """
        subscription = webhooks.create_subscription(session(), g.client, data["url"], data["events"], policy())
        session().commit()
        response = jsonify(WebhookCreatedOut().dump(subscription))
        response.status_code = 201
        return response

    @documented(blp, (422, "A query parameter is invalid or unknown."))
    @require(*SCOPES)
    @blp.arguments(PageArgs(), **QUERY)
    @blp.response(200, WebhookPage)
    def get(self, args):
        """List this key's webhooks, each `active` or `disabled` (with the reason)."""
        return page_response(
            webhooks.list_subscriptions(session(), g.client, args["page"], args["per_page"]), WebhookOut()
        )


@blp.route("/<uuid:webhook_id>")
class WebhookById(MethodView):
    @documented(blp, (404, "No webhook of this key has this id."))
    @require(*SCOPES)
    @blp.response(204)
    def delete(self, webhook_id: uuid.UUID):
        """Stop a webhook; its pending deliveries are cancelled."""
        webhooks.delete_subscription(session(), g.client, webhook_id)
        session().commit()


@blp.route("/<uuid:webhook_id>/rotate-secret")
class WebhookSecret(MethodView):
    @documented(blp, (404, "No webhook of this key has this id."))
    @require(*SCOPES)
    @blp.response(200, WebhookCreatedOut)
    def post(self, webhook_id: uuid.UUID):
        """Replace the signing secret; the new one is in this response only.

        Every delivery from now on, pending ones included, is signed with the new secret
        alone.
        """
        subscription = webhooks.rotate_secret(session(), g.client, webhook_id)
        session().commit()
        return subscription


@blp.route("/<uuid:webhook_id>/deliveries")
class WebhookDeliveries(MethodView):
    @documented(blp, (404, "No webhook of this key has this id."), (422, "A query parameter is invalid or unknown."))
    @require(*SCOPES)
    @blp.arguments(PageArgs(), **QUERY)
    @blp.response(200, DeliveryPage)
    def get(self, args, webhook_id: uuid.UUID):
        """Every delivery to this webhook and every attempt at it (time, status, duration)."""
        page = webhooks.deliveries(session(), g.client, webhook_id, args["page"], args["per_page"])
        return page_response(page, WebhookDeliveryOut())
