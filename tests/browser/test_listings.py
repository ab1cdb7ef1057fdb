"""Program staff's listings in a real browser: two editors open the same listing, the first
saves, the second's stale save is refused with a message; axe-core on the listing pages."""

from __future__ import annotations

import uuid

from tests.browser.conftest import DESKTOP, check_accessibility, sign_in
from tests.web.helpers import make_staff

HOMES_EDITORS = ("one@healthy-homes.example", "two@healthy-homes.example")
INSPECTIONS = uuid.UUID("d44f0de0-0e05-5711-9331-f2f72e05df13")  # Healthy Homes: hazard inspections (seed)


def test_a_second_editors_stale_save_is_refused_with_a_message(app, live_server, new_context):
    for email in HOMES_EDITORS:
        make_staff(app, email, "program_staff", "healthy-homes")
    pages = []
    for email in HOMES_EDITORS:
        page = new_context(viewport=DESKTOP, locale="en-US").new_page()
        page.goto(live_server + "/app/sign-in")
        sign_in(page, email)
        page.wait_for_url("**/app/inbox")
        page.click("nav >> text=My listings")
        page.wait_for_url("**/app/listings")
        check_accessibility(page)
        page.click("text=Home lead and safety hazard inspections")
        page.wait_for_url(f"**/app/listings/{INSPECTIONS}")
        pages.append(page)
    first, second = pages
    check_accessibility(first)

    first.fill("#description", "Inspects homes for lead and other hazards (first editor).")
    first.click("button:has-text('Save the listing')")
    first.wait_for_url(f"**/app/listings/{INSPECTIONS}")
    assert first.locator("p.notice").inner_text() == "The listing was saved."

    second.fill("#description", "The second editor's text.")
    second.click("button:has-text('Save the listing')")
    second.wait_for_selector("#error-summary")
    assert "Someone else saved this listing after you opened it" in second.locator("#error-summary").inner_text()
    assert second.input_value("#description") == "Inspects homes for lead and other hazards (first editor)."
    check_accessibility(second)

    record = second.request.get(f"{live_server}/services/{INSPECTIONS}").json()
    assert record["description"] == "Inspects homes for lead and other hazards (first editor)."
