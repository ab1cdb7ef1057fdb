"""Find help: the public search, service and handout pages (no sign-in)."""

from __future__ import annotations

import re

from tests.web.helpers import HMG_CT, HMG_NATIONAL

TODDLER = "/app/search?q=my+toddler+isn%27t+talking"


def test_a_parents_words_find_help_me_grow_with_a_tel_link(reader):
    client = reader  # only reads: the module's shared database
    response = client.get(TODDLER)
    assert response.status_code == 200
    page = response.get_data(as_text=True)
    assert f'href="/app/services/{HMG_CT}"' in page
    assert 'href="tel:211"' in page  # how to refer, callable from a phone
    assert "services found" in page
    assert 'value="my toddler isn&#39;t talking"' in page  # the box keeps the words


def test_the_landing_page_is_the_search_box_without_results(reader):
    client = reader  # only reads: the module's shared database
    page = client.get("/app/").get_data(as_text=True)
    assert 'id="q"' in page and "services found" not in page


def test_filters_narrow_results_to_the_facet_counts_shown(reader):
    client = reader  # only reads: the module's shared database
    everything = client.get("/app/search").get_data(as_text=True)
    total = int(re.search(r"(\d+) services found", everything).group(1))
    options = re.findall(r'<option value="([a-z0-9-]+)" lang="en">[^<]+ \((\d+)\)</option>', everything)
    code, count = next((code, int(n)) for code, n in options if int(n) < total)
    filtered = client.get(f"/app/search?category={code}").get_data(as_text=True)
    assert re.search(rf"\b{count} services? found", filtered)
    assert f'<option value="{code}" selected lang="en">' in filtered


def test_zero_results_offer_a_way_back(reader):
    client = reader  # only reads: the module's shared database
    page = client.get("/app/search?q=zzqxv+wwplk&age=3").get_data(as_text=True)
    assert "No services found" in page
    assert "search again without the filters" in page


def test_a_bad_age_is_a_422_that_keeps_what_was_typed(reader):
    client = reader  # only reads: the module's shared database
    response = client.get("/app/search?q=speech&age=three")
    assert response.status_code == 422
    page = response.get_data(as_text=True)
    assert 'value="three"' in page and 'value="speech"' in page
    assert "Give an age in years" in page
    assert response.headers["Cache-Control"] == "no-store"


def test_a_service_page_shows_the_whole_record(reader):
    client = reader  # only reads: the module's shared database
    response = client.get(f"/app/services/{HMG_CT}")
    assert response.status_code == 200
    page = response.get_data(as_text=True)
    assert "Help Me Grow Connecticut" in page
    assert 'href="tel:211"' in page
    assert f'href="/app/handout?service={HMG_CT}"' in page


def test_an_unknown_service_is_a_404_page(reader):
    client = reader  # only reads: the module's shared database
    response = client.get("/app/services/00000000-0000-0000-0000-000000000000")
    assert response.status_code == 404
    assert "We could not find that page." in response.get_data(as_text=True)


def test_a_handout_of_hand_picked_services_holds_their_contact_points(reader):
    client = reader  # only reads: the module's shared database
    response = client.get(f"/app/handout?service={HMG_CT}&service={HMG_NATIONAL}")
    assert response.status_code == 200
    page = response.get_data(as_text=True)
    assert page.index("Help Me Grow Connecticut") >= 0 and "Help Me Grow National Center" in page
    # Help Me Grow Connecticut's referral contact point (the 211 Child Development Infoline);
    # the National Center's pages give it none, and the handout invents none.
    assert "211" in page and page.count("tel:") >= 1
    assert 'media="print"' in page


def test_a_handout_with_a_bad_or_no_service_is_refused(reader):
    client = reader  # only reads: the module's shared database
    assert client.get("/app/handout").status_code == 422
    assert client.get("/app/handout?service=not-an-id").status_code == 422
    assert client.get("/app/handout?service=00000000-0000-0000-0000-000000000000").status_code == 404


def test_public_pages_are_cacheable_with_an_etag_and_a_304(reader):
    client = reader  # only reads: the module's shared database
    first = client.get(TODDLER)
    etag = first.headers["ETag"]
    assert first.headers["Cache-Control"].startswith("public")
    assert "Set-Cookie" not in first.headers
    again = client.get(TODDLER, headers={"If-None-Match": etag})
    assert again.status_code == 304


def test_every_page_has_a_csp_without_inline_script(reader):
    client = reader  # only reads: the module's shared database
    for url in ("/app/", TODDLER, f"/app/services/{HMG_CT}", "/app/sign-in", "/app/search?age=x"):
        csp = client.get(url).headers["Content-Security-Policy"]
        assert "script-src 'self'" in csp and "unsafe-inline" not in csp
        assert "frame-ancestors 'none'" in csp
    assert "<script>" not in client.get(TODDLER).get_data(as_text=True)


def test_the_api_keeps_its_own_csp(reader):
    client = reader  # only reads: the module's shared database
    assert client.get("/services").headers["Content-Security-Policy"].startswith("default-src 'none'; frame-ancestors")


def test_spanish_from_accept_language_with_records_marked_english(reader):
    client = reader  # only reads: the module's shared database
    english = client.get(TODDLER)
    spanish = client.get(TODDLER, headers={"Accept-Language": "es-MX,es;q=0.9,en;q=0.5"})
    page = spanish.get_data(as_text=True)
    assert '<html lang="es">' in page
    assert "Encontrar ayuda para un niño" in page and "Cómo remitir" in page
    assert '<a href="/app/services/' in page and 'lang="en">Help Me Grow Connecticut</a>' in page
    assert spanish.headers["ETag"] != english.headers["ETag"]  # a cache keeps both languages apart
    assert "Accept-Language" in spanish.headers["Vary"]


def test_the_language_switch_sets_a_cookie_and_returns_to_the_page(reader):
    client = reader  # only reads: the module's shared database
    response = client.get("/app/language?lang=es&next=/app/search?q=asthma")
    assert response.status_code == 303 and response.headers["Location"].endswith("/app/search?q=asthma")
    assert "lang=es" in response.headers["Set-Cookie"]
    page = client.get("/app/search?q=asthma").get_data(as_text=True)
    assert '<html lang="es">' in page and "English</a>" in page


def test_the_language_switch_never_redirects_off_the_app(reader):
    client = reader  # only reads: the module's shared database
    for target in ("https://example.org/", "//example.org/", "/services"):
        response = client.get("/app/language", query_string={"lang": "es", "next": target})
        assert response.headers["Location"].endswith("/app/search")


def test_every_ui_string_has_a_spanish_translation():
    from pathlib import Path

    from babel.messages.pofile import read_po

    root = Path(__file__).resolve().parents[2] / "web" / "translations"
    template = read_po((root / "messages.pot").open("rb"))
    spanish = read_po((root / "es" / "LC_MESSAGES" / "messages.po").open("rb"))
    missing = [m.id for m in template if m.id and not (spanish.get(m.id) and spanish.get(m.id).string)]
    assert missing == []
    mo = root / "es" / "LC_MESSAGES" / "messages.mo"
    assert mo.stat().st_mtime >= (root / "es" / "LC_MESSAGES" / "messages.po").stat().st_mtime - 1


def test_the_accepting_filter_keeps_only_services_that_take_referrals_here(app, client):
    from sqlalchemy import func, select

    from api.extensions import db
    from models import Service

    with app.app_context():
        taking = db.session.scalar(
            select(func.count(Service.id)).where(Service.accepts_referrals.is_(True), Service.status == "active")
        )
    page = client.get("/app/search?accepting=true").get_data(as_text=True)
    assert re.search(rf"\b{taking} services? found|No services found", page)
    assert "Contact the program</dd>" not in page
    assert client.get("/services?accepts_referrals=true").get_json()["total_items"] == taking
    assert client.get("/app/search?accepting=maybe").status_code == 422


def test_a_search_that_signals_an_emergency_shows_who_to_call_above_the_results(reader):
    client = reader  # only reads: the module's shared database
    page = client.get("/app/search?q=my+son+was+shot").get_data(as_text=True)
    assert 'href="tel:911"' in page
    assert page.index("advisories-heading") < page.index("results-heading")
    calm = client.get("/app/search?q=car+seat+safety").get_data(as_text=True)
    assert "advisories-heading" not in calm and "results-heading" in calm


def test_the_emergency_guidance_speaks_spanish_on_a_spanish_page(reader):
    client = reader  # only reads: the module's shared database
    client.set_cookie("lang", "es")
    page = client.get("/app/search?q=a+mi+hijo+le+dispararon").get_data(as_text=True)
    assert "Si es una emergencia, llame ahora" in page and 'href="tel:911"' in page
