"""Program staff's listings: their program's services, and per service the forms to edit,
verify, set capacity and turn referrals on or off. Each form names the version it changes
(the record's ETag, in a hidden field) and calls the core functions the API's PUT/PATCH,
verify and capacity call (core.editing), through the staff user's backing API client."""

from __future__ import annotations

import uuid

from flask import abort, flash, g, redirect, request, url_for
from flask_babel import gettext as _
from marshmallow import ValidationError
from sqlalchemy import select

from api.common import session
from api.services import CapacityIn, VerifyIn, dump
from core import directory, editing
from core.errors import (
    DomainError,
    Forbidden,
    NotFound,
    PreconditionFailed,
    PreconditionRequired,
)
from models import Service
from models.vocab import CAPACITY_STATUSES
from web.views import bp, error_page, flatten, page, role_required

# The main text fields of a record the edit form shows (a modest form: the rest is the API's).
TEXT_FIELDS = (
    "name",
    "alternate_name",
    "description",
    "eligibility_description",
    "application_process",
    "fees_description",
    "interpretation_services",
    "alert",
    "url",
    "email",
)
LONG_FIELDS = {"description", "eligibility_description", "application_process", "fees_description", "alert"}
AGE_FIELDS = ("minimum_age", "maximum_age")
CAPACITY_FORM = ("status", "available", "maximum", "unit", "expected_wait_days", "description")


def listing_services() -> list[Service]:
    """The services this user's client may edit (core's rule), by name."""
    client = g.staff.client
    query = select(Service).order_by(Service.name)
    if not editing.is_admin(client):
        ids = list(client.program_ids) if editing.WRITE in client.scope_set else []
        if not ids:
            return []
        query = query.where(Service.program_id.in_(ids))
    return list(session().scalars(query))


def editable(service_id: uuid.UUID) -> Service:
    """The service, when this user may edit it: another program's is 403, none 404."""
    try:
        editing.editable_service(session(), g.staff.client, service_id)
    except Forbidden:
        abort(403)
    return directory.get_service(session(), service_id)


def record_form(service: Service) -> dict:
    record = dump(service)
    form = {name: record.get(name) or "" for name in TEXT_FIELDS}
    for name in AGE_FIELDS:
        value = record.get(name)
        form[name] = "" if value is None else f"{value:g}"
    return form


def capacity_form(service: Service) -> dict:
    values = {
        "status": service.capacity_status,
        "available": service.capacity_available,
        "maximum": service.capacity_maximum,
        "unit": service.capacity_unit,
        "expected_wait_days": service.capacity_wait_days,
        "description": service.capacity_description,
    }
    out = {}
    for key, value in values.items():
        if isinstance(value, float):
            value = f"{value:g}"
        out[key] = "" if value is None else str(value)
    return out


def listing_page(
    service_id: uuid.UUID,
    status: int = 200,
    *,
    form: dict | None = None,
    capacity: dict | None = None,
    errors: dict | None = None,
    message: str | None = None,
    section: str | None = None,
):
    session().rollback()  # nothing of a refused write stays in the session
    service = editable(service_id)
    return page(
        "listing.html",
        status,
        service=service,
        etag=editing.record_etag(dump(service)),
        form=form or record_form(service),
        capacity=capacity or capacity_form(service),
        capacity_now=editing.capacity_status(service),
        errors=errors or {},
        message=message,
        section=section,
        text_fields=TEXT_FIELDS,
        long_fields=LONG_FIELDS,
        capacity_statuses=CAPACITY_STATUSES,
        history=editing.history(session(), service_id)[:10],
    )


def expected_version() -> list[str] | None:
    """The ETag the form was rendered with, as If-Match would carry it."""
    etag = request.form.get("etag", "").strip().strip('"')
    return [etag] if etag else None


def stale_message() -> str:
    return _(
        "Someone else saved this listing after you opened it. Your changes were not saved: "
        "here it is as it is now. Make your changes again and save."
    )


def write(service_id: uuid.UUID, action, section: str, form: dict | None = None, capacity: dict | None = None):
    """Run one core write; on a refusal show the page again with the reason (nothing changed)."""
    try:
        action()
        session().commit()
    except (PreconditionFailed, PreconditionRequired):
        session().rollback()
        return listing_page(service_id, 409, message=stale_message(), section=section)
    except Forbidden:
        session().rollback()
        return error_page(403, _("Your account cannot open this page."))
    except NotFound:
        raise
    except ValidationError as exc:
        session().rollback()
        return listing_page(
            service_id,
            422,
            form=form,
            capacity=capacity,
            errors=flatten(exc.messages),
            message=_("Check the fields marked below."),
            section=section,
        )
    except DomainError as exc:
        session().rollback()
        return listing_page(
            service_id,
            422,
            form=form,
            capacity=capacity,
            errors=flatten(exc.errors),
            message=_("Nothing was saved: the listing breaks a rule of the directory."),
            section=section,
        )
    return None


@bp.get("/listings")
@role_required("program_staff", "admin")
def listings():
    return page("listings.html", services=listing_services())


@bp.get("/listings/<uuid:service_id>")
@role_required("program_staff", "admin")
def listing(service_id: uuid.UUID):
    return listing_page(service_id)


@bp.post("/listings/<uuid:service_id>/edit")
@role_required("program_staff", "admin")
def edit_listing(service_id: uuid.UUID):
    editable(service_id)
    form = {name: request.form.get(name, "").strip() for name in TEXT_FIELDS + AGE_FIELDS}
    patch: dict = {}
    errors: dict = {}
    for name in TEXT_FIELDS:
        patch[name] = form[name] or None  # an emptied field is removed (merge patch null)
    for name in AGE_FIELDS:
        if not form[name]:
            patch[name] = None
            continue
        try:
            patch[name] = float(form[name])
        except ValueError:
            errors[name] = _("Give a number of years, e.g. 3 or 2.5.")
    if errors:
        return listing_page(
            service_id, 422, form=form, errors=errors, message=_("Check the fields marked below."), section="edit"
        )
    refused = write(
        service_id,
        lambda: editing.patch_service(session(), g.staff.client, service_id, patch, expected_version(), dump),
        "edit",
        form=form,
    )
    if refused:
        return refused
    flash(_("The listing was saved."))
    return redirect(url_for("web.listing", service_id=service_id), 303)


@bp.post("/listings/<uuid:service_id>/verify")
@role_required("program_staff", "admin")
def verify_listing(service_id: uuid.UUID):
    editable(service_id)
    note = request.form.get("note", "").strip()

    def action():
        data = VerifyIn().load({"note": note} if note else {})
        editing.verify_service(session(), g.staff.client, service_id, expected_version(), data.get("note"), dump)

    refused = write(service_id, action, "verify")
    if refused:
        return refused
    flash(_("The listing is marked as checked today."))
    return redirect(url_for("web.listing", service_id=service_id), 303)


@bp.post("/listings/<uuid:service_id>/capacity")
@role_required("program_staff", "admin")
def capacity_listing(service_id: uuid.UUID):
    editable(service_id)
    capacity = {name: request.form.get(name, "").strip() for name in CAPACITY_FORM}

    def action():
        data = CapacityIn().load({key: value for key, value in capacity.items() if value})
        editing.set_capacity(session(), g.staff.client, service_id, expected_version(), data, dump)

    refused = write(service_id, action, "capacity", capacity=capacity)
    if refused:
        return refused
    flash(_("The capacity was saved."))
    return redirect(url_for("web.listing", service_id=service_id), 303)


@bp.post("/listings/<uuid:service_id>/referrals")
@role_required("program_staff", "admin")
def referrals_listing(service_id: uuid.UUID):
    editable(service_id)
    value = request.form.get("accepts_referrals", "")
    if value not in ("true", "false"):
        return listing_page(
            service_id, 422, message=_("Choose whether the service takes referrals."), section="referrals"
        )
    on = value == "true"
    refused = write(
        service_id,
        lambda: editing.patch_service(
            session(), g.staff.client, service_id, {"accepts_referrals": on}, expected_version(), dump
        ),
        "referrals",
    )
    if refused:
        return refused
    flash(_("Referrals are now on.") if on else _("Referrals are now off."))
    return redirect(url_for("web.listing", service_id=service_id), 303)


def capacity_label(status: str) -> str:
    labels = {
        "capacity": _("Taking new clients"),
        "no-capacity": _("Not taking new clients"),
        "waitlist": _("Waitlist"),
        "additional-assessment-required": _("Assessment needed first"),
        "unknown": _("Not known"),
    }
    return labels.get(status, status)


def field_label(name: str) -> str:
    labels = {
        "name": _("Name"),
        "alternate_name": _("Other name"),
        "description": _("Description"),
        "eligibility_description": _("Who is eligible"),
        "application_process": _("How to apply"),
        "fees_description": _("Fees"),
        "interpretation_services": _("Interpretation"),
        "alert": _("Alert"),
        "url": _("Website"),
        "email": _("E-mail"),
        "minimum_age": _("Youngest age (years)"),
        "maximum_age": _("Oldest age (years)"),
    }
    return labels.get(name, name)


bp.add_app_template_global(capacity_label)
bp.add_app_template_global(field_label)
