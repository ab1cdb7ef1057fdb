"""Browser tests: Playwright driving Debian's chromium (never a downloaded browser) against
the app served by a real HTTP server on 127.0.0.1, on SQLite and on PostgreSQL; axe-core
(npm, tests/browser/package-lock.json) checks every page against WCAG 2.1 AA.

Under CI=true a missing browser or axe-core fails the run; elsewhere these tests are skipped
with the reason (`make browser` installs both)."""

from __future__ import annotations

import os
import shutil
import tempfile
import threading
from pathlib import Path

import pytest
from werkzeug.serving import make_server

from tests.conftest import IN_CI
from tests.web.helpers import PASSWORD, make_staff, set_accepts_referrals

CHROMIUM = os.environ.get("CHROMIUM", "/usr/bin/chromium")
AXE = Path(__file__).resolve().parent / "node_modules" / "axe-core" / "axe.min.js"
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
COORDINATOR = "ana.ruiz@hartford-pediatrics.example"
HMG_STAFF = "intake@hmg.example"


def _missing() -> str | None:
    if not (os.path.isfile(CHROMIUM) and os.access(CHROMIUM, os.X_OK)):
        return f"chromium is not installed at {CHROMIUM} (make browser)"
    if not AXE.is_file():
        return f"axe-core is not installed at {AXE} (make browser)"
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        return "the playwright package is not installed (make install)"
    return None


@pytest.fixture(scope="session")
def playwright_driver():
    reason = _missing()
    if reason:
        if IN_CI:
            pytest.fail(f"Browser tests cannot run in CI: {reason}", pytrace=False)
        pytest.skip(reason)
    from playwright.sync_api import sync_playwright

    with sync_playwright() as driver:
        yield driver


@pytest.fixture
def live_server(app):
    """The app on its own seeded database, served on 127.0.0.1 by a threaded server; Help Me
    Grow Connecticut takes referrals; a coordinator and the program's intake worker exist."""
    set_accepts_referrals(app)
    make_staff(app, COORDINATOR, "coordinator")
    make_staff(app, HMG_STAFF, "program_staff", "help-me-grow")
    server = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_port}"
    server.shutdown()
    thread.join(10)


@pytest.fixture
def new_context(playwright_driver):
    """Make a browser context (its own fresh user-data-dir) with axe-core loaded in every page."""
    made = []

    def make(**options):
        profile = tempfile.mkdtemp(prefix="occh-chromium-")
        context = playwright_driver.chromium.launch_persistent_context(
            profile,
            executable_path=CHROMIUM,
            headless=True,
            args=CHROMIUM_ARGS,
            **options,
        )
        context.add_init_script(path=str(AXE))
        made.append((context, profile))
        return context

    yield make
    for context, profile in made:
        context.close()
        shutil.rmtree(profile, ignore_errors=True)


def check_accessibility(page) -> None:
    """Zero serious or critical axe-core violations of the WCAG 2.0/2.1 A and AA rules."""
    result = page.evaluate(
        """() => axe.run(document, {runOnly: {type: 'tag', values: ['wcag2a', 'wcag2aa', 'wcag21a', 'wcag21aa']}})"""
    )
    bad = [
        f"{v['id']} ({v['impact']}): {v['help']} at {[n['target'] for n in v['nodes']][:3]}"
        for v in result["violations"]
        if v["impact"] in ("serious", "critical")
    ]
    assert bad == [], f"{page.url}: " + "; ".join(bad)


DESKTOP = {"width": 1280, "height": 900}
PHONE = {"width": 390, "height": 844}


def sign_in(page, email: str) -> None:
    page.fill("#email", email)
    page.fill("#password", PASSWORD)
    page.click("button[type=submit]:has-text('Sign in')")
