"""Pages of the web app. Each view parses its query or form with the API's schemas, calls the
core function the API calls, and renders a template; the rules live in core and schemas only."""

from __future__ import annotations

import uuid
from functools import wraps
from typing import Any

from flask import Blueprint, abort, current_app, flash, g, redirect, render_template, request, session, url_for
from flask_babel import gettext as _
from flask_login import current_user, login_required, login_user, logout_user
from marshmallow import ValidationError

from api.common import count_limit
from api.common import session as db_session
from api.limits import address_key
from api.referrals import IDEMPOTENCY_KEY
from api.services import query_from
from core import advisories, directory, referrals, staff
from core.errors import DomainError, NotFound, PreconditionFailed
from models import Service, StaffUser, utcnow
from models.vocab import (
    CONSENT_METHODS,
    CONTACT_PREFERENCES,
    GUARDIAN_RELATIONSHIPS,
    REFERRAL_STATUSES,
    URGENCIES,
)
from schemas.args import ServiceListArgs
from schemas.referrals import ReferralIn, StatusChangeIn

bp = Blueprint(
    "web", __name__, url_prefix="/app", template_folder="templates", static_folder="static", static_url_path="/static"
)

PER_PAGE = 10
FACETS = ["category", "town", "language", "program"]
SEARCH_PARAMS = ("q", "category", "town", "age", "language", "accepting", "sort", "page")
# The inbox's groups, in their order: the lifecycle's open statuses (core.referrals.OPEN).
OPEN_STATUSES = referrals.OPEN
INBOX_PAGE = 50


class Staff:
    """The signed-in staff member as Flask-Login sees them."""

    def __init__(self, user: StaffUser) -> None:
        self.user = user
        self.is_authenticated = True
        self.is_active = not user.disabled
        self.is_anonymous = False

    def get_id(self) -> str:
        return str(self.user.id)


def load_staff(user_id: str):
    try:
        user = staff.get_active_staff(db_session(), uuid.UUID(user_id))
    except ValueError:
        return None
    return Staff(user) if user is not None else None


def private(view):
    """A page for a signed-in user: never cached, never stored."""
    view.occh_private = True
    return view


def role_required(*roles: str):
    def decorator(view):
        @wraps(view)
        @login_required
        def wrapper(*args, **kwargs):
            if current_user.user.role not in roles:
                abort(403)
            g.staff = current_user.user
            return view(*args, **kwargs)

        return private(wrapper)

    return decorator


@bp.after_request
def headers(response):
    response.headers["Vary"] = "Accept-Language, Cookie"
    if (
        getattr(current_app.view_functions.get(request.endpoint or ""), "occh_private", False)
        or response.status_code >= 400
    ):
        response.headers["Cache-Control"] = "no-store"
        response.headers["Pragma"] = "no-cache"
    return response


@bp.app_context_processor
def template_globals():
    from flask_babel import get_locale

    return {
        "ui_lang": str(get_locale() or "en"),
        "record_lang": "en",  # the directory's records are in English
        "staff_user": g.get("staff"),
        "channel_label": channel_label,
        "current_path": request.full_path.rstrip("?") if request else "/app/",
    }


def page(template: str, status: int = 200, **context):
    return render_template(template, **context), status


def error_page(status: int, message: str):
    return page("error.html", status, message=message)


@bp.errorhandler(NotFound)
def not_found(exc):
    return error_page(404, _("We could not find that page."))


@bp.errorhandler(403)
def forbidden(exc):
    return error_page(403, _("Your account cannot open this page."))


@bp.errorhandler(404)
def page_not_found(exc):
    return error_page(404, _("We could not find that page."))


@bp.errorhandler(429)
def too_many(exc):
    return error_page(429, _("Too many tries. Wait a minute and try again."))


def csrf_error(exc):
    if request.blueprint != "web":
        return exc
    return error_page(400, _("This form expired. Go back, reload the page and send it again."))


# ----------------------------------------------------------------------------- find help


def search_args() -> tuple[dict, dict]:
    """The search form's values, loaded by the API's ServiceListArgs (the same rules)."""
    form = {name: request.args.get(name, "").strip() for name in SEARCH_PARAMS}
    raw: dict = {"full": True, "facets": FACETS, "per_page": PER_PAGE}
    if form["q"]:
        raw["search"] = form["q"]
    for name in ("category", "town", "language"):
        raw[name] = [form[name]] if form[name] else []
    raw["age"] = [form["age"]] if form["age"] else []
    if form["accepting"]:
        raw["accepts_referrals"] = form["accepting"]
    if form["sort"]:
        raw["sort"] = form["sort"]
    raw["page"] = form["page"] or 1
    return form, raw


@bp.get("/")
@bp.get("/search")
def search():
    form, raw = search_args()
    try:
        args = ServiceListArgs().load(raw)
        if args.get("sort") == "distance":
            raise ValidationError({"sort": ["Not offered here."]})
    except ValidationError as exc:
        names = {"search": "q", "accepts_referrals": "accepting"}
        errors = {names.get(k, k): " ".join(map(str, v)) for k, v in exc.normalized_messages().items()}
        return page("search.html", 422, form=form, errors=errors, results=None, facets={})
    results = None
    if request.path.endswith("/search") or any(form[name] for name in SEARCH_PARAMS if name != "page"):
        results = directory.list_services(
            db_session(), query_from(args), args["page"], args["per_page"], True, False, count_limit()
        )
    from flask_babel import get_locale

    # Who to call now, above the results, when the words signal an emergency (the API's rule).
    calls = advisories.advisories_for(args.get("search"), str(get_locale() or "en"))
    return page(
        "search.html",
        form=form,
        errors={},
        results=results,
        advisories=calls,
        facets=results.extra.get("facets", {}) if results else {},
    )


@bp.get("/services/<uuid:service_id>")
def service_page(service_id: uuid.UUID):
    service = directory.get_service(db_session(), service_id)
    return page("service.html", service=service)


@bp.get("/handout")
def handout():
    services = []
    values = request.args.getlist("service")
    if not values or len(values) > 20:
        return error_page(422, _("Choose from 1 to 20 services for a handout."))
    for value in dict.fromkeys(values):
        try:
            services.append(directory.get_service(db_session(), uuid.UUID(value)))
        except ValueError:
            return error_page(422, _("A service in this handout is not valid."))
    return page("handout.html", services=services)


@bp.get("/language")
@private
def language():
    chosen = request.args.get("lang", "")
    target = request.args.get("next", "")
    if not target.startswith("/app/") or "//" in target or "\\" in target:
        target = url_for("web.search")
    response = redirect(target, 303)
    if chosen in ("en", "es"):
        response.set_cookie(
            "lang", chosen, max_age=365 * 24 * 3600, samesite="Lax", httponly=True, secure=request.is_secure
        )
    return response


# ----------------------------------------------------------------------------- signing in


def _signin_limited() -> bool:
    """WEB_SIGNIN_RATELIMIT sign-in attempts per address, in the rate limiter's storage."""
    if not current_app.config.get("RATELIMIT_ENABLED"):
        return False
    from limits import parse
    from limits.storage import storage_from_string
    from limits.strategies import FixedWindowRateLimiter

    limiter = current_app.extensions.get("occh_signin_limiter")
    if limiter is None:
        uri = current_app.config.get("RATELIMIT_STORAGE_URI") or "memory://"
        limiter = current_app.extensions["occh_signin_limiter"] = FixedWindowRateLimiter(storage_from_string(uri))
    try:
        return not limiter.hit(parse(current_app.config["WEB_SIGNIN_RATELIMIT"]), "signin", address_key())
    except Exception:  # storage down: the per-account lockout still holds
        return False


@bp.route("/sign-in", methods=["GET", "POST"])
@private
def sign_in():
    if request.method == "GET":
        return page("sign_in.html", email="", error=None)
    email = request.form.get("email", "")[:254]
    password = request.form.get("password", "")
    if _signin_limited():
        return page("sign_in.html", 429, email=email, error=_("Too many tries. Wait a minute and try again."))
    try:
        user = staff.authenticate_staff(db_session(), email, password)
    except staff.LockedOut:
        db_session().commit()
        return page(
            "sign_in.html",
            403,
            email=email,
            error=_("This account is locked after too many failed tries. Try again in 15 minutes."),
        )
    db_session().commit()
    if user is None:
        return page("sign_in.html", 401, email=email, error=_("The e-mail or the password is wrong."))
    session.clear()  # a new session at sign-in: nothing carried over from before
    login_user(Staff(user))
    session["n"] = uuid.uuid4().hex
    target = url_for("web.inbox") if user.role == "program_staff" else url_for("web.my_referrals")
    if user.role == "admin":
        target = url_for("web.listings")
    wanted = request.args.get("next", "")
    if wanted.startswith("/app/") and "//" not in wanted and "\\" not in wanted:
        target = wanted
    return redirect(target, 303)


@bp.post("/sign-out")
@private
def sign_out():
    logout_user()
    session.clear()
    return redirect(url_for("web.search"), 303)


# ----------------------------------------------------------------------------- referring

PEOPLE = ("child", "guardian", "consent", "referrer")
BOOLEANS = {"guardian_may_leave_message", "consent_obtained"}


def referral_data(form, service_id: uuid.UUID) -> dict:
    """The form's fields (child_given_name, ...) as the nested body of POST /referrals."""
    data: dict = {"service_id": str(service_id), **{group: {} for group in PEOPLE}}
    for key, value in form.items():
        value = value.strip()
        group, _sep, field = key.partition("_")
        if key in ("reason", "urgency"):
            if value:
                data[key] = value
        elif key in BOOLEANS:
            # A checkbox or yes/no field: a JSON boolean, as the API's strict booleans expect.
            data[group][field] = value.lower() in ("true", "on", "yes", "1")
        elif group in PEOPLE and field and value:
            data[group][field] = value
    data["consent"].setdefault("obtained", False)
    return data


def flatten(errors, prefix: str = "") -> dict[str, str]:
    out: dict[str, str] = {}
    for key, value in (errors or {}).items():
        name = f"{prefix}_{key}" if prefix else str(key)
        if isinstance(value, dict):
            out.update(flatten(value, name))
        else:
            out[name] = " ".join(map(str, value)) if isinstance(value, list) else str(value)
    return out


def referral_form(service: Service, form: dict, errors: dict, status: int = 200, message: str | None = None):
    return page(
        "refer.html",
        status,
        service=service,
        form=form,
        errors=errors,
        message=message,
        relationships=GUARDIAN_RELATIONSHIPS,
        preferences=CONTACT_PREFERENCES,
        methods=CONSENT_METHODS,
        urgencies=URGENCIES,
    )


@bp.route("/services/<uuid:service_id>/refer", methods=["GET", "POST"])
@role_required("coordinator")
def refer(service_id: uuid.UUID):
    service = directory.get_service(db_session(), service_id)
    if request.method == "GET":
        form = {
            "submission_id": str(uuid.uuid4()),
            "referrer_email": g.staff.email,
            "urgency": "routine",
            "consent_obtained_at": utcnow().strftime("%Y-%m-%dT%H:%M"),
        }
        return referral_form(service, form, {})
    form = {key: value for key, value in request.form.items() if key != "csrf_token"}
    key = form.pop("submission_id", "")
    if not IDEMPOTENCY_KEY.fullmatch(key):
        key = str(uuid.uuid4())
    form_out = {**form, "submission_id": key}
    try:
        data = ReferralIn().load(referral_data(form, service_id))
        submitted = referrals.submit_referral(db_session(), g.staff.client, data, key)
    except ValidationError as exc:
        return referral_form(service, form_out, flatten(exc.messages), 422, _("Check the fields marked below."))
    except DomainError as exc:
        db_session().rollback()
        return referral_form(service, form_out, flatten(exc.errors), 422, exc.message)
    flash(_("The referral was sent."))
    return redirect(url_for("web.referral_page", referral_id=submitted.referral.id), 303)


@bp.get("/referrals")
@role_required("coordinator")
def my_referrals():
    try:
        number = max(1, min(int(request.args.get("page", "1")), 100_000))
    except ValueError:
        number = 1
    result = referrals.list_referrals(db_session(), g.staff.client, [], [], None, number, INBOX_PAGE)
    db_session().commit()  # the audit entries of this read
    names = service_names([r.service_id for r in result.contents])
    return page("my_referrals.html", result=result, names=names)


def service_names(ids) -> dict:
    from sqlalchemy import select

    ids = set(ids)
    return (
        {row.id: row.name for row in db_session().execute(select(Service.id, Service.name).where(Service.id.in_(ids)))}
        if ids
        else {}
    )


@bp.get("/inbox")
@role_required("program_staff")
def inbox():
    chosen = request.args.get("status", "")
    statuses = [chosen] if chosen in REFERRAL_STATUSES else list(OPEN_STATUSES)
    service_id = None
    if request.args.get("service"):
        try:
            service_id = uuid.UUID(request.args["service"])
        except ValueError:
            return error_page(422, _("Choose a service from the list."))
    groups = []
    for status in statuses:  # new first (oldest waiting first), then accepted, in progress, on hold
        result = referrals.list_referrals(
            db_session(), g.staff.client, [status], [service_id] if service_id else [], None, 1, INBOX_PAGE
        )
        groups.append((status, result))
    db_session().commit()
    program_services = g.staff.program.services if g.staff.program else []
    names = {s.id: s.name for s in program_services}
    return page(
        "inbox.html",
        groups=groups,
        names=names,
        services=program_services,
        chosen_status=chosen,
        chosen_service=str(service_id or ""),
        statuses=REFERRAL_STATUSES,
    )


@bp.get("/referrals/<uuid:referral_id>")
@role_required("coordinator", "program_staff")
def referral_page(referral_id: uuid.UUID, errors: dict | None = None, message: str | None = None, status: int = 200):
    referral = referrals.get_referral(db_session(), g.staff.client, referral_id)
    events = referrals.referral_events(db_session(), g.staff.client, referral_id)
    db_session().commit()
    service = db_session().get(Service, referral.service_id)
    return page(
        "referral.html",
        status,
        referral=referral,
        events=events,
        service=service,
        moves=referrals.moves_for(g.staff.client, referral),
        needs_reason=referrals.REASON_REQUIRED,
        errors=errors or {},
        message=message,
        me=g.staff.client_id,
    )


@bp.post("/referrals/<uuid:referral_id>/status")
@role_required("coordinator", "program_staff")
def change_status(referral_id: uuid.UUID):
    body = {key: request.form.get(key, "").strip() for key in ("status", "reason", "outcome")}
    body = {key: value for key, value in body.items() if value}
    try:
        version = int(request.form.get("version", ""))
    except ValueError:
        version = None
    try:
        data = StatusChangeIn().load(body)
        referrals.transition_referral(
            db_session(), g.staff.client, referral_id, data["status"], data.get("reason"), data.get("outcome"), version
        )
        db_session().commit()
    except ValidationError as exc:
        return referral_page(referral_id, flatten(exc.messages), _("Check the fields marked below."), 422)
    except PreconditionFailed:
        db_session().rollback()
        return referral_page(
            referral_id,
            {},
            _("Someone changed this referral while you were reading it. Here it is as it is now; choose again."),
            409,
        )
    except NotFound:
        raise
    except DomainError as exc:
        db_session().rollback()
        return referral_page(
            referral_id, flatten({k: v for k, v in exc.errors.items() if k != "allowed"}), exc.message, 422
        )
    flash(_("The referral is now: %(status)s.", status=status_label(data["status"])))
    return redirect(url_for("web.referral_page", referral_id=referral_id), 303)


def channel_label(channel: str) -> str:
    labels = {
        "phone": _("Phone"),
        "email": _("E-mail"),
        "web": _("Website"),
        "fax": _("Fax"),
        "in_person": _("In person"),
    }
    return labels.get(channel, channel)


def status_label(status: str) -> str:
    labels = {
        "requested": _("New"),
        "accepted": _("Accepted"),
        "rejected": _("Declined"),
        "in-progress": _("In progress"),
        "on-hold": _("On hold"),
        "completed": _("Completed"),
        "failed": _("Could not be completed"),
        "cancelled": _("Cancelled"),
        "entered-in-error": _("Entered in error"),
    }
    return labels.get(status, status)


@bp.app_template_filter("status")
def status_filter(status: str) -> str:
    return status_label(status)


@bp.app_template_global()
def search_url(**changes) -> str:
    """The current search with some parameters changed (None removes one); page back to 1."""
    # Any: url_for's keywords include typed ones (_external: bool) that a str would not fit.
    params: dict[str, Any] = {name: request.args.get(name) for name in SEARCH_PARAMS if request.args.get(name)}
    params.pop("page", None)
    for key, value in changes.items():
        if value is None:
            params.pop(key, None)
        else:
            params[key] = value
    return url_for("web.search", **params)


def vocab_label(value: str) -> str:
    labels = {
        "mother": _("Mother"),
        "father": _("Father"),
        "parent": _("Parent"),
        "grandparent": _("Grandparent"),
        "foster-parent": _("Foster parent"),
        "legal-guardian": _("Legal guardian"),
        "relative": _("Relative"),
        "other": _("Other"),
        "self": _("Self"),
        "phone": _("Phone call"),
        "text": _("Text message"),
        "email": _("E-mail"),
        "none": _("Do not contact"),
        "verbal": _("Spoken"),
        "written": _("Written"),
        "electronic": _("Electronic"),
        "routine": _("Routine"),
        "urgent": _("Urgent"),
        "asap": _("As soon as possible"),
        "stat": _("Immediately"),
    }
    return labels.get(value, value)


@bp.app_template_filter("language_name")
def language_name(code: str) -> str:
    """A language code in the reader's language (es -> Spanish / español)."""
    from babel import Locale, UnknownLocaleError
    from flask_babel import get_locale

    try:
        return Locale.parse(code).get_display_name(get_locale() or "en") or code
    except (ValueError, UnknownLocaleError):
        return code


@bp.app_template_filter("datefmt")
def datefmt(value) -> str:
    from flask_babel import format_date

    return format_date(value, "medium")


@bp.app_template_filter("datetimefmt")
def datetimefmt(value) -> str:
    from flask_babel import format_datetime

    return format_datetime(value, "medium")


@bp.app_template_global()
def contact_points(service, families_only: bool = False) -> list[dict]:
    """A service's referral contact points, one per channel and value, each with the
    audiences it serves; for a family's handout, the points meant for families when any are."""
    points = list(service.referral_contact_points)
    if families_only and any(p.audience == "families" for p in points):
        points = [p for p in points if p.audience == "families"]
    merged: dict = {}
    for point in points:
        entry = merged.setdefault((point.channel, point.value), {"point": point, "audiences": []})
        entry["audiences"].append(point.audience)
    return list(merged.values())


@bp.app_template_global()
def other_phones(service) -> list:
    """The service's phones that are not already a referral contact point."""
    known = {p.value for p in service.referral_contact_points if p.channel == "phone"}
    return [phone for phone in service.phones if phone.number not in known]


def audience_label(audience: str) -> str:
    labels = {
        "families": _("for families"),
        "health_care_providers": _("for health care providers"),
        "community_partners": _("for community partners"),
    }
    return labels.get(audience, audience)


bp.add_app_template_global(audience_label)
bp.add_app_template_filter(audience_label)
bp.add_app_template_global(vocab_label)
bp.add_app_template_global(language_name)
