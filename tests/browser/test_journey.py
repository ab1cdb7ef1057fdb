"""The web app in a real browser: a coordinator's referral from search to completion, the
Spanish interface, the printed handout, keyboard-only search, form errors, double submits;
axe-core on every page, and the screenshots of docs/web.md and the README."""

from __future__ import annotations

import io
import re
from pathlib import Path

from sqlalchemy import func, select

from api.extensions import db
from models import Referral
from tests.browser.conftest import COORDINATOR, DESKTOP, HMG_STAFF, PHONE, check_accessibility, sign_in
from tests.web.helpers import CHILD, FAMILY, HMG_CT

SCREENSHOTS = Path(__file__).resolve().parents[2] / "docs" / "screenshots"
OUTCOME = "Developmental screening booked; family attended intake."


def fill_referral(page) -> None:
    page.fill("#child_given_name", CHILD)
    page.fill("#child_family_name", FAMILY)
    page.fill("#child_birth_date", "2024-03-02")
    page.fill("#child_town", "Hartford")
    page.fill("#guardian_name", "Marisol Quillfeather")
    page.select_option("#guardian_relationship", "mother")
    page.fill("#guardian_phone", "860-555-0142")
    page.select_option("#guardian_contact_preference", "text")
    page.check("#guardian_may_leave_message")
    page.check("#consent_obtained")
    page.fill("#consent_obtained_by", "Dr. Ana Ruiz")
    page.select_option("#consent_relationship", "mother")
    page.select_option("#consent_method", "verbal")
    page.fill("#reason", "Not yet talking at 2; parent worried about speech.")
    page.fill("#referrer_name", "Dr. Ana Ruiz")
    page.fill("#referrer_organization", "Hartford Pediatrics")


def referral_count(app) -> int:
    with app.app_context():
        return db.session.scalar(select(func.count(Referral.id)))


def test_a_coordinator_refers_and_the_program_accepts_and_completes(app, live_server, new_context):
    coordinator = new_context(viewport=DESKTOP, locale="en-US").new_page()
    coordinator.goto(live_server + "/app/")
    check_accessibility(coordinator)
    coordinator.fill("#q", "my toddler isn't talking")
    coordinator.press("#q", "Enter")
    coordinator.wait_for_url("**/app/search?*")
    check_accessibility(coordinator)
    coordinator.click("text=Help Me Grow Connecticut")
    coordinator.wait_for_url(f"**/app/services/{HMG_CT}")
    check_accessibility(coordinator)
    coordinator.click("text=Refer a child")
    coordinator.wait_for_url("**/app/sign-in?*")
    check_accessibility(coordinator)
    sign_in(coordinator, COORDINATOR)
    coordinator.wait_for_url(f"**/app/services/{HMG_CT}/refer")
    check_accessibility(coordinator)
    fill_referral(coordinator)
    coordinator.click("text=Send the referral")
    coordinator.wait_for_url(re.compile(r".*/app/referrals/[0-9a-f-]{36}$"))
    assert coordinator.is_visible("text=The referral was sent.")
    check_accessibility(coordinator)
    referral_url = coordinator.url
    assert CHILD not in referral_url

    program = new_context(viewport=DESKTOP, locale="en-US").new_page()
    program.goto(live_server + "/app/sign-in")
    sign_in(program, HMG_STAFF)
    program.wait_for_url("**/app/inbox")
    check_accessibility(program)
    program.click(f"text={CHILD} {FAMILY}")
    program.wait_for_url(referral_url)
    check_accessibility(program)
    program.click("text=Mark as: Accepted")
    program.wait_for_selector("#current-status:has-text('Accepted')")
    check_accessibility(program)
    program.fill("#outcome-completed", OUTCOME)
    program.click("text=Mark as: Completed")
    program.wait_for_selector("#current-status:has-text('Completed')")

    coordinator.goto(live_server + "/app/referrals")
    check_accessibility(coordinator)
    assert coordinator.is_visible("td >> text=Completed")
    coordinator.goto(referral_url)
    assert coordinator.inner_text("#current-status") == "Completed"
    assert coordinator.inner_text("#outcome") == OUTCOME


def test_the_spanish_interface_follows_the_browser_and_the_switch(live_server, new_context):
    page = new_context(locale="es-ES").new_page()
    page.goto(live_server + "/app/search?q=asthma")
    assert page.get_attribute("html", "lang") == "es"
    assert page.inner_text("h1") == "Encontrar ayuda para un niño"
    assert page.get_attribute("h3 a >> nth=0", "lang") == "en"  # the record's own language
    check_accessibility(page)
    page.click("text=English")
    page.wait_for_url("**/app/search?q=asthma")
    assert page.get_attribute("html", "lang") == "en"
    assert page.inner_text("h1") == "Find help for a child"
    page.click("text=Español")
    assert page.inner_text("h1") == "Encontrar ayuda para un niño"


def test_the_handout_prints_to_a_pdf_with_the_contact_point(live_server, new_context):
    from pypdf import PdfReader

    page = new_context().new_page()
    page.goto(live_server + "/app/search?q=my+toddler+isn%27t+talking")
    page.check(f"#pick-{HMG_CT}")
    page.click("text=Make a handout of the chosen services")
    page.wait_for_url(f"**/app/handout?service={HMG_CT}")
    check_accessibility(page)
    pdf = page.pdf(format="Letter")
    text = "".join(p.extract_text() for p in PdfReader(io.BytesIO(pdf)).pages)
    assert "Help Me Grow Connecticut" in text
    assert "211" in text  # the service's referral contact point
    assert "Staff sign-in" not in text and "Make a handout" not in text  # the print stylesheet
    assert len(PdfReader(io.BytesIO(pdf)).pages) == 1


def test_search_by_keyboard_alone(live_server, new_context):
    page = new_context().new_page()
    page.goto(live_server + "/app/")
    for _ in range(20):
        page.keyboard.press("Tab")
        if page.evaluate("document.activeElement.id") == "q":
            break
    assert page.evaluate("document.activeElement.id") == "q"
    page.keyboard.type("my toddler isn't talking")
    page.keyboard.press("Enter")
    page.wait_for_url("**/app/search?*")
    for _ in range(40):
        page.keyboard.press("Tab")
        if page.evaluate("document.activeElement.textContent") == "Help Me Grow Connecticut":
            break
    page.keyboard.press("Enter")
    page.wait_for_url(f"**/app/services/{HMG_CT}")
    assert page.inner_text("h1") == "Help Me Grow Connecticut"


def test_a_form_error_keeps_the_typed_values_and_a_double_click_sends_one(app, live_server, new_context):
    page = new_context().new_page()
    page.goto(live_server + f"/app/services/{HMG_CT}/refer")
    sign_in(page, COORDINATOR)
    page.wait_for_url(f"**/app/services/{HMG_CT}/refer")
    fill_referral(page)
    page.uncheck("#consent_obtained")
    page.click("text=Send the referral")
    page.wait_for_selector("#consent_obtained-error")
    check_accessibility(page)
    assert page.input_value("#child_given_name") == CHILD
    assert page.input_value("#reason") == "Not yet talking at 2; parent worried about speech."
    assert page.input_value("#guardian_relationship") == "mother"
    assert page.is_checked("#guardian_may_leave_message")
    assert referral_count(app) == 0
    page.check("#consent_obtained")
    page.dblclick("text=Send the referral")
    page.wait_for_url(re.compile(r".*/app/referrals/[0-9a-f-]{36}$"))
    assert referral_count(app) == 1


def test_screenshots_at_desktop_and_phone_widths(engine, live_server, new_context):
    """docs/screenshots/, shown in docs/web.md (taken on SQLite only: the pages are the same)."""
    if engine != "sqlite":
        return
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    for name, viewport in (("desktop", DESKTOP), ("phone", PHONE)):
        coordinator = new_context(viewport=viewport).new_page()
        coordinator.goto(live_server + "/app/search?q=my+toddler+isn%27t+talking")
        coordinator.screenshot(path=str(SCREENSHOTS / f"search-{name}.png"), full_page=False)
        coordinator.goto(live_server + f"/app/services/{HMG_CT}")
        coordinator.screenshot(path=str(SCREENSHOTS / f"service-{name}.png"))
        coordinator.goto(live_server + f"/app/handout?service={HMG_CT}")
        coordinator.emulate_media(media="print")
        coordinator.screenshot(path=str(SCREENSHOTS / f"handout-{name}.png"))
        coordinator.emulate_media(media="screen")
        coordinator.goto(live_server + f"/app/services/{HMG_CT}/refer")
        sign_in(coordinator, COORDINATOR)
        coordinator.wait_for_url(f"**/app/services/{HMG_CT}/refer")
        coordinator.screenshot(path=str(SCREENSHOTS / f"referral-form-{name}.png"))
        fill_referral(coordinator)
        coordinator.click("text=Send the referral")
        coordinator.wait_for_url(re.compile(r".*/app/referrals/[0-9a-f-]{36}$"))
        program = new_context(viewport=viewport).new_page()
        program.goto(live_server + "/app/sign-in")
        sign_in(program, HMG_STAFF)
        program.wait_for_url("**/app/inbox")
        program.screenshot(path=str(SCREENSHOTS / f"inbox-{name}.png"))
    assert len(list(SCREENSHOTS.glob("*.png"))) >= 10
