"""The web app: server-rendered pages under /app/ for families, care coordinators and
program staff. A second door to the same rooms: the views parse a form, call the core
functions the API calls (with the API's marshmallow schemas), and render a template.
"""

from __future__ import annotations

import secrets
from pathlib import Path

from flask import Flask, g, has_request_context, request
from flask.sessions import SecureCookieSessionInterface
from flask_babel import Babel
from flask_login import LoginManager
from flask_wtf.csrf import CSRFError, CSRFProtect

LANGUAGES = ("en", "es")
LANG_COOKIE = "lang"
# No inline script or style; the form-action and frame rules keep pages from being framed
# or posting elsewhere.
WEB_CSP = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
)

babel = Babel()
login_manager = LoginManager()
csrf = CSRFProtect()


def select_locale() -> str:
    """The language a visitor chose (the `lang` cookie), else the browser's Accept-Language."""
    chosen = request.cookies.get(LANG_COOKIE)
    if chosen in LANGUAGES:
        return chosen
    return request.accept_languages.best_match(LANGUAGES) or "en"


def cache_variant() -> str:
    """A public page's body depends on its language as well as its URL."""
    return "lang=" + select_locale() if request.blueprint == "web" else ""


def _secret_key(app: Flask) -> str:
    """SECRET_KEY, or a key kept in instance/secret_key (made once), shared by every worker."""
    path = Path(app.instance_path) / "secret_key"
    if path.exists():
        return path.read_text().strip()
    path.parent.mkdir(parents=True, exist_ok=True)
    key = secrets.token_urlsafe(48)
    path.write_text(key)
    path.chmod(0o600)
    return key


class SecureWhenHttpsSession(SecureCookieSessionInterface):
    """The session cookie is `Secure` whenever the request came over HTTPS (behind
    PROXY_HOPS trusted proxies, by X-Forwarded-Proto), or always with SESSION_COOKIE_SECURE."""

    def get_cookie_secure(self, app) -> bool:
        return bool(app.config.get("SESSION_COOKIE_SECURE")) or (has_request_context() and request.is_secure)


def init_web(app: Flask) -> None:
    from web import (
        cli,
        listings,  # noqa: F401  (its pages, on views.bp)
        views,
    )

    if not app.config.get("SECRET_KEY"):
        app.config["SECRET_KEY"] = _secret_key(app)
    app.config.setdefault("WEB_SIGNIN_RATELIMIT", "10 per minute")
    app.config.update(
        SESSION_COOKIE_HTTPONLY=True,
        SESSION_COOKIE_SAMESITE="Lax",
        SESSION_COOKIE_NAME="occh_session",
        REMEMBER_COOKIE_HTTPONLY=True,
        REMEMBER_COOKIE_SAMESITE="Lax",
        WTF_CSRF_TIME_LIMIT=None,  # valid for the session
        # Pages send Referrer-Policy: no-referrer (api/limits.py), so no Referer check over
        # HTTPS: the token and the SameSite=Lax cookie stop cross-site posts.
        WTF_CSRF_SSL_STRICT=False,
        BABEL_TRANSLATION_DIRECTORIES=str(Path(__file__).parent / "translations"),
        BABEL_DEFAULT_LOCALE="en",
    )
    app.session_interface = SecureWhenHttpsSession()
    babel.init_app(app, locale_selector=select_locale)
    login_manager.init_app(app)
    login_manager.login_view = "web.sign_in"
    login_manager.session_protection = "basic"
    # CSRF only on the web app's forms; the API authenticates with Bearer keys, not cookies.
    app.config["WTF_CSRF_CHECK_DEFAULT"] = False
    csrf.init_app(app)
    app.extensions.setdefault("occh_cache_variants", []).append(cache_variant)

    @login_manager.user_loader
    def load_user(user_id: str):
        return views.load_staff(user_id)

    app.register_blueprint(views.bp)
    cli.register(app)

    @app.before_request
    def web_request() -> None:
        if request.blueprint == "web":
            g.occh_csp = WEB_CSP
            if request.method == "POST":
                csrf.protect()

    app.register_error_handler(CSRFError, views.csrf_error)
