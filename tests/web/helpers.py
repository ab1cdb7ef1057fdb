"""Shared helpers of the web app's tests: staff accounts, sign-in, forms with CSRF tokens."""

from __future__ import annotations

import html
import re
import uuid

from api.extensions import db
from core import staff
from models import Service

HMG_CT = uuid.UUID("abfe9b77-37de-537c-9f69-3fd3da4671f2")  # Help Me Grow Connecticut (seed)
HMG_NATIONAL = uuid.UUID("ff18ca4c-e078-5505-83c2-f342be0fe27b")
PASSWORD = "correct horse battery staple"
CHILD = "Zephyrine"
FAMILY = "Quillfeather"


def set_accepts_referrals(app, service_id: uuid.UUID = HMG_CT, value: bool = True) -> None:
    """The seed does not promise any service takes referrals: the test turns it on itself."""
    with app.app_context():
        db.session.get(Service, service_id).accepts_referrals = value
        db.session.commit()


def make_staff(app, email: str, role: str, program: str | None = None) -> None:
    with app.app_context():
        staff.create_staff(db.session, email, PASSWORD, role, program)
        db.session.commit()


def csrf(page_html: str) -> str:
    match = re.search(r'name="csrf_token" value="([^"]+)"', page_html)
    assert match, "the page has no CSRF token"
    return match.group(1)


def hidden(page_html: str, name: str) -> str:
    match = re.search(rf'name="{name}" value="([^"]*)"', page_html)
    return html.unescape(match.group(1)) if match else ""


def sign_in(client, email: str, password: str = PASSWORD):
    page = client.get("/app/sign-in").get_data(as_text=True)
    return client.post("/app/sign-in", data={"email": email, "password": password, "csrf_token": csrf(page)})


def referral_form(**changes) -> dict:
    form = {
        "child_given_name": CHILD,
        "child_family_name": FAMILY,
        "child_birth_date": "2024-03-02",
        "child_town": "Hartford",
        "guardian_name": "Marisol Quillfeather",
        "guardian_relationship": "mother",
        "guardian_phone": "860-555-0142",
        "guardian_preferred_language": "es",
        "guardian_contact_preference": "text",
        "guardian_may_leave_message": "true",
        "consent_obtained": "true",
        "consent_obtained_by": "Dr. Ana Ruiz",
        "consent_relationship": "mother",
        "consent_obtained_at": "2026-11-20T15:00",
        "consent_method": "verbal",
        "reason": "Not yet talking at 2; parent worried about speech.",
        "urgency": "routine",
        "referrer_name": "Dr. Ana Ruiz",
        "referrer_organization": "Hartford Pediatrics",
        "referrer_phone": "860-555-0100",
    }
    form.update(changes)
    return {k: v for k, v in form.items() if v is not None}


def open_referral_form(client, service_id: uuid.UUID = HMG_CT) -> tuple[str, str, str]:
    """(page, csrf token, submission id) of a fresh referral form."""
    page = client.get(f"/app/services/{service_id}/refer").get_data(as_text=True)
    return page, csrf(page), hidden(page, "submission_id")
