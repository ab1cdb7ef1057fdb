"""Program staff's listings: edit, verify, capacity and referrals on or off, through forms
that call the API's core writes (If-Match by the record's ETag in a hidden field)."""

from __future__ import annotations

import uuid

import pytest
from sqlalchemy import func, select

from api.extensions import db
from models import RecordHistory
from tests.web.helpers import HMG_CT, csrf, hidden, make_staff, sign_in

HOMES_STAFF = "listings@healthy-homes.example"
INSPECTIONS = uuid.UUID("d44f0de0-0e05-5711-9331-f2f72e05df13")  # Healthy Homes: hazard inspections (seed)
EDUCATION = uuid.UUID("fdb2c90a-3e19-573a-9e20-be99dd9ad69b")  # Healthy Homes: hazard education (seed)
LISTING = f"/app/listings/{INSPECTIONS}"


@pytest.fixture
def homes(app, client):
    make_staff(app, HOMES_STAFF, "program_staff", "healthy-homes")
    assert sign_in(client, HOMES_STAFF).status_code == 303
    return client


def opened(client, path: str = LISTING) -> tuple[str, str, str]:
    """(page, csrf token, etag) of a listing page."""
    response = client.get(path)
    assert response.status_code == 200
    page = response.get_data(as_text=True)
    return page, csrf(page), hidden(page, "etag")


def api_record(client, service_id: uuid.UUID = INSPECTIONS) -> dict:
    response = client.get(f"/services/{service_id}")
    assert response.status_code == 200
    return response.get_json()


def history_count(app) -> int:
    with app.app_context():
        return db.session.scalar(select(func.count(RecordHistory.id)))


def edit_form(page: str, **changes) -> dict:
    names = (
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
        "minimum_age",
        "maximum_age",
    )
    form = {name: hidden_or_text(page, name) for name in names}
    form.update(changes)
    return form


def hidden_or_text(page: str, name: str) -> str:
    import html
    import re

    match = re.search(rf'<textarea id="{name}" name="{name}"[^>]*>(.*?)</textarea>', page, re.DOTALL)
    if match:
        return html.unescape(match.group(1))
    match = re.search(rf'<input id="{name}" name="{name}"[^>]*? value="([^"]*)"', page)
    return html.unescape(match.group(1)) if match else hidden(page, name)


def test_my_listings_shows_the_programs_services_only_and_is_never_stored(homes):
    response = homes.get("/app/listings")
    page = response.get_data(as_text=True)
    assert response.status_code == 200 and response.headers["Cache-Control"] == "no-store"
    assert "Home lead and safety hazard inspections" in page and "Home hazard education" in page
    assert "Help Me Grow" not in page.split("<main", 1)[1]
    assert "unsafe-inline" not in response.headers["Content-Security-Policy"]


def test_staff_edit_their_service_and_the_api_shows_it(app, homes):
    page, token, etag = opened(homes)
    before = api_record(homes)
    form = edit_form(
        page,
        csrf_token=token,
        etag=etag,
        description="Checks homes for lead and other hazards.",
        minimum_age="0",
        maximum_age="18",
    )
    response = homes.post(f"{LISTING}/edit", data=form)
    assert response.status_code == 303
    record = api_record(homes)
    assert record["description"] == "Checks homes for lead and other hazards."
    assert record["minimum_age"] == 0 and record["maximum_age"] == 18
    assert record["name"] == before["name"] and record.get("phones") == before.get("phones")  # the rest kept
    with app.app_context():
        entry = db.session.scalar(select(RecordHistory).where(RecordHistory.record_id == INSPECTIONS))
        assert entry.action == "patch" and entry.client_name == f"staff:{HOMES_STAFF}"
    assert "The listing was saved." in homes.get(LISTING).get_data(as_text=True)


def test_staff_verify_with_a_note_set_capacity_and_turn_referrals_on(app, homes):
    _page, token, etag = opened(homes)
    assert (
        homes.post(
            f"{LISTING}/verify", data={"csrf_token": token, "etag": etag, "note": "Called the office."}
        ).status_code
        == 303
    )
    record = api_record(homes)
    from models import utcnow

    assert record["assured_date"] == utcnow().date().isoformat()
    with app.app_context():
        assert (
            db.session.scalar(select(RecordHistory.note).where(RecordHistory.action == "verify"))
            == "Called the office."
        )

    _page, token, etag = opened(homes)
    capacity = {"status": "waitlist", "available": "0", "maximum": "12", "unit": "families", "expected_wait_days": "21"}
    assert homes.post(f"{LISTING}/capacity", data={"csrf_token": token, "etag": etag, **capacity}).status_code == 303
    [served] = api_record(homes)["capacities"]
    assert served["status"] == "waitlist" and served["maximum"] == 12 and served["expected_wait_days"] == 21
    assert served["unit"] == {"name": "families"}

    _page, token, etag = opened(homes)
    assert api_record(homes)["accepts_referrals"] is False
    assert (
        homes.post(
            f"{LISTING}/referrals", data={"csrf_token": token, "etag": etag, "accepts_referrals": "true"}
        ).status_code
        == 303
    )
    assert api_record(homes)["accepts_referrals"] is True
    assert "Referrals are now on." in homes.get(LISTING).get_data(as_text=True)


def test_a_capacity_the_api_refuses_is_refused_here_beside_its_field(app, homes):
    _page, token, etag = opened(homes)
    count = history_count(app)
    response = homes.post(
        f"{LISTING}/capacity", data={"csrf_token": token, "etag": etag, "status": "capacity", "available": "5"}
    )
    page = response.get_data(as_text=True)
    assert response.status_code == 422 and 'id="unit-error"' in page  # counts need a unit (core's rule)
    assert api_record(homes).get("capacities", []) == [] and history_count(app) == count


def test_a_record_the_import_rules_refuse_changes_nothing(app, homes):
    page, token, etag = opened(homes)
    count = history_count(app)
    response = homes.post(f"{LISTING}/edit", data=edit_form(page, csrf_token=token, etag=etag, name=""))
    assert response.status_code == 422 and 'id="name-error"' in response.get_data(as_text=True)
    assert api_record(homes)["name"] == "Home lead and safety hazard inspections" and history_count(app) == count


def test_another_programs_service_is_refused(app, homes):
    assert homes.get(f"/app/listings/{HMG_CT}").status_code == 403
    _page, token, etag = opened(homes)
    response = homes.post(
        f"/app/listings/{HMG_CT}/referrals", data={"csrf_token": token, "etag": etag, "accepts_referrals": "true"}
    )
    assert response.status_code == 403
    assert api_record(homes, HMG_CT)["accepts_referrals"] is False
    assert homes.get(f"/app/listings/{uuid.uuid4()}").status_code == 404


def test_a_coordinator_has_no_listings(app, client):
    make_staff(app, "coord@clinic.example", "coordinator")
    sign_in(client, "coord@clinic.example")
    assert client.get("/app/listings").status_code == 403


def test_a_stale_save_is_refused_with_a_message_and_changes_nothing(app, homes):
    page, token, first_etag = opened(homes)
    # A second editor saves first (here the same account in another tab: the version is what counts).
    assert (
        homes.post(
            f"{LISTING}/edit",
            data=edit_form(page, csrf_token=token, etag=first_etag, description="The first editor's text."),
        ).status_code
        == 303
    )
    count = history_count(app)
    response = homes.post(
        f"{LISTING}/edit",
        data=edit_form(page, csrf_token=token, etag=first_etag, description="The second editor's text."),
    )
    body = response.get_data(as_text=True)
    assert response.status_code == 409
    assert "Someone else saved this listing after you opened it" in body
    assert (
        "The first editor&#39;s text." in body or "The first editor's text." in body
    )  # the page shows it as it is now
    assert api_record(homes)["description"] == "The first editor's text." and history_count(app) == count
    # The stale version refuses the other forms too.
    stale = homes.post(
        f"{LISTING}/referrals", data={"csrf_token": token, "etag": first_etag, "accepts_referrals": "true"}
    )
    assert stale.status_code == 409 and api_record(homes)["accepts_referrals"] is False


def test_a_form_without_its_version_or_token_changes_nothing(app, homes):
    _page, token, _etag = opened(homes)
    assert (
        homes.post(f"{LISTING}/referrals", data={"csrf_token": token, "accepts_referrals": "true"}).status_code == 409
    )
    assert homes.post(f"{LISTING}/referrals", data={"accepts_referrals": "true"}).status_code == 400
    assert api_record(homes)["accepts_referrals"] is False


def test_the_listing_pages_speak_spanish(homes):
    homes.set_cookie("lang", "es")
    page = homes.get(LISTING).get_data(as_text=True)
    assert "Mis listados" in page and "Guardar el listado" in page


def test_an_admin_signs_in_to_the_listings_core_lets_them_edit(app, client):
    make_staff(app, "admin@directory.example", "admin")
    response = sign_in(client, "admin@directory.example")
    assert response.status_code == 303 and response.headers["Location"].endswith("/app/listings")
    page = client.get("/app/listings").get_data(as_text=True)
    # The admin role grants directory:admin, as an API key with that scope: every listing.
    assert "Your account has no listings to keep." not in page
    assert client.get(LISTING).status_code == 200
