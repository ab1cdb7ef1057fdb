"""Staff accounts, sign-in, referring from a service page, the program's inbox and the
status buttons: the same core rules as the API, through forms with CSRF tokens."""

from __future__ import annotations

import re

import pytest
from sqlalchemy import func, select

from api.extensions import db
from models import AuditEntry, Referral, StaffUser
from tests.web.helpers import (
    CHILD,
    FAMILY,
    HMG_CT,
    HMG_NATIONAL,
    PASSWORD,
    csrf,
    make_staff,
    open_referral_form,
    referral_form,
    set_accepts_referrals,
    sign_in,
)

COORDINATOR = "ana.ruiz@hartford-pediatrics.example"
OTHER_COORDINATOR = "lee.chen@clinic.example"
HMG_STAFF = "intake@hmg.example"


@pytest.fixture
def people(app):
    set_accepts_referrals(app, HMG_CT)
    make_staff(app, COORDINATOR, "coordinator")
    make_staff(app, OTHER_COORDINATOR, "coordinator")
    make_staff(app, HMG_STAFF, "program_staff", "help-me-grow")
    return app


def referral_count(app) -> int:
    with app.app_context():
        return db.session.scalar(select(func.count(Referral.id)))


def send_referral(client, **changes):
    page, token, submission = open_referral_form(client)
    return client.post(
        f"/app/services/{HMG_CT}/refer",
        data={**referral_form(**changes), "csrf_token": token, "submission_id": submission},
    )


# ----------------------------------------------------------------------------- accounts


def test_flask_staff_create_reads_the_password_from_stdin_and_hashes_it(app):
    runner = app.test_cli_runner()
    result = runner.invoke(
        args=[
            "staff",
            "create",
            "--email",
            "Intake@HMG.example",
            "--role",
            "program_staff",
            "--program",
            "help-me-grow",
            "--password-stdin",
        ],
        input=PASSWORD + "\n",
    )
    assert result.exit_code == 0, result.output
    assert PASSWORD not in result.output
    with app.app_context():
        user = db.session.scalar(select(StaffUser))
        assert user.email == "intake@hmg.example"
        assert user.password_hash.startswith("$argon2id$") and PASSWORD not in user.password_hash
        assert user.client.scope_set == {"referrals:manage", "directory:write"}
        assert {p for p in user.client.program_ids} == {user.program_id}


@pytest.mark.parametrize(
    "args, message",
    [
        (["--role", "program_staff"], "needs --program"),
        (["--role", "coordinator", "--program", "no-such-program"], "No program"),
        (["--role", "coordinator"], "12 to"),  # the short password below
    ],
)
def test_flask_staff_create_refuses_what_it_cannot_do(app, args, message):
    password = "short\n" if message == "12 to" else PASSWORD + "\n"
    result = app.test_cli_runner().invoke(
        args=["staff", "create", "--email", "a@b.example", *args, "--password-stdin"], input=password
    )
    assert result.exit_code != 0 and message in result.output
    with app.app_context():
        assert db.session.scalar(select(func.count(StaffUser.id))) == 0


def test_the_backing_client_has_no_usable_key(people, client):
    with people.app_context():
        user = db.session.scalar(select(StaffUser).where(StaffUser.email == COORDINATOR))
        prefix = user.client.key_prefix
    response = client.get("/referrals", headers={"Authorization": f"Bearer occh_{prefix}_anything"})
    assert response.status_code == 401


# ----------------------------------------------------------------------------- signing in


def test_sign_in_gives_a_new_http_only_lax_session_and_sign_out_ends_it(people, client):
    client.get("/app/sign-in")
    before = client.get_cookie("occh_session")
    response = sign_in(client, COORDINATOR)
    assert response.status_code == 303 and response.headers["Location"].endswith("/app/referrals")
    cookie = response.headers["Set-Cookie"]
    assert "HttpOnly" in cookie and "SameSite=Lax" in cookie and "Secure" not in cookie  # plain http here
    assert client.get_cookie("occh_session").value != (before.value if before else None)
    page = client.get("/app/referrals")
    assert page.status_code == 200 and page.headers["Cache-Control"] == "no-store"
    token = csrf(page.get_data(as_text=True))
    assert client.post("/app/sign-out", data={"csrf_token": token}).status_code == 303
    assert client.get("/app/referrals").status_code == 302  # to the sign-in page


def test_the_session_cookie_is_secure_over_https(people, client):
    page = client.get("/app/sign-in", base_url="https://localhost").get_data(as_text=True)
    response = client.post(
        "/app/sign-in",
        base_url="https://localhost",
        data={"email": COORDINATOR, "password": PASSWORD, "csrf_token": csrf(page)},
    )
    assert response.status_code == 303 and "Secure" in response.headers["Set-Cookie"]


def test_a_wrong_password_is_refused_and_five_lock_the_account(people, client):
    for _ in range(5):
        assert sign_in(client, COORDINATOR, "wrong password here").status_code == 401
    locked = sign_in(client, COORDINATOR)  # the right password, during the lockout
    assert locked.status_code == 403 and "locked" in locked.get_data(as_text=True)


def test_an_unknown_email_gets_the_same_answer_as_a_wrong_password(people, client):
    unknown = sign_in(client, "nobody@nowhere.example")
    wrong = sign_in(client, COORDINATOR, "wrong password here")
    assert unknown.status_code == wrong.status_code == 401
    assert "The e-mail or the password is wrong." in unknown.get_data(as_text=True)


def test_a_form_without_its_csrf_token_is_refused_and_changes_nothing(people, client):
    response = client.post("/app/sign-in", data={"email": COORDINATOR, "password": PASSWORD})
    assert response.status_code == 400 and "form expired" in response.get_data(as_text=True)
    sign_in(client, COORDINATOR)
    _, _, submission = open_referral_form(client)
    response = client.post(f"/app/services/{HMG_CT}/refer", data={**referral_form(), "submission_id": submission})
    assert response.status_code == 400
    assert referral_count(people) == 0


def test_sign_in_is_rate_limited_per_address(people):
    people.config["RATELIMIT_ENABLED"] = True
    people.config["WEB_SIGNIN_RATELIMIT"] = "3 per minute"
    client = people.test_client()
    codes = [sign_in(client, "nobody@nowhere.example").status_code for _ in range(4)]
    assert codes == [401, 401, 401, 429]


def test_a_disabled_account_is_signed_out_at_its_next_request(people, client):
    sign_in(client, COORDINATOR)
    assert client.get("/app/referrals").status_code == 200
    result = people.test_cli_runner().invoke(args=["staff", "disable", "--email", COORDINATOR])
    assert result.exit_code == 0
    assert client.get("/app/referrals").status_code == 302
    assert sign_in(client, COORDINATOR).status_code == 401


def test_staff_pages_need_the_right_role(people, client):
    assert client.get(f"/app/services/{HMG_CT}/refer").status_code == 302
    sign_in(client, HMG_STAFF)
    assert client.get(f"/app/services/{HMG_CT}/refer").status_code == 403
    assert client.get("/app/referrals").status_code == 403


# ----------------------------------------------------------------------------- referring


def test_a_coordinator_refers_a_child_and_follows_it_in_my_referrals(people, client):
    sign_in(client, COORDINATOR)
    response = send_referral(client)
    assert response.status_code == 303
    location = response.headers["Location"]
    assert re.fullmatch(r".*/app/referrals/[0-9a-f-]{36}", location)
    assert CHILD not in location and FAMILY not in location  # no personal data in URLs
    page = client.get(location).get_data(as_text=True)
    assert "The referral was sent." in page and "New" in page
    mine = client.get("/app/referrals").get_data(as_text=True)
    assert f"{CHILD} {FAMILY}" in mine and "Help Me Grow Connecticut" in mine
    with people.app_context():
        referral = db.session.scalar(select(Referral))
        user = db.session.scalar(select(StaffUser).where(StaffUser.email == COORDINATOR))
        assert referral.sender_client_id == user.client_id
        assert referral.consent_obtained and referral.guardian_may_leave_message
        actions = set(db.session.scalars(select(AuditEntry.action).where(AuditEntry.client_id == user.client_id)))
        assert {"create", "read", "list"} <= actions


def test_a_form_error_is_shown_by_its_field_and_keeps_every_typed_value(people, client):
    sign_in(client, COORDINATOR)
    response = send_referral(client, guardian_phone="", guardian_email="", child_birth_date="2999-01-01")
    assert response.status_code == 422
    page = response.get_data(as_text=True)
    assert 'id="child_birth_date-error"' in page and "The birth date is in the future." in page
    assert 'id="guardian_phone-error"' in page
    assert f'value="{CHILD}"' in page and 'value="Hartford Pediatrics"' in page
    assert "Not yet talking at 2; parent worried about speech.</textarea>" in page
    assert 'value="mother" selected' in page
    assert referral_count(people) == 0


def test_no_consent_no_referral(people, client):
    sign_in(client, COORDINATOR)
    response = send_referral(client, consent_obtained=None)
    assert response.status_code == 422 and "A referral needs the family&#39;s consent." in response.get_data(
        as_text=True
    )
    assert referral_count(people) == 0


def test_a_service_that_takes_no_referrals_says_so(people, client):
    sign_in(client, COORDINATOR)
    page, token, submission = open_referral_form(client, HMG_NATIONAL)
    response = client.post(
        f"/app/services/{HMG_NATIONAL}/refer",
        data={**referral_form(), "csrf_token": token, "submission_id": submission},
    )
    assert response.status_code == 422
    assert "does not accept referrals" in response.get_data(as_text=True)
    assert referral_count(people) == 0


def test_a_double_submit_creates_one_referral(people, client):
    sign_in(client, COORDINATOR)
    page, token, submission = open_referral_form(client)
    data = {**referral_form(), "csrf_token": token, "submission_id": submission}
    first = client.post(f"/app/services/{HMG_CT}/refer", data=data)
    second = client.post(f"/app/services/{HMG_CT}/refer", data=data)
    assert first.headers["Location"] == second.headers["Location"]
    assert referral_count(people) == 1


def test_a_corrected_form_keeps_its_submission_and_makes_one_referral(people, client):
    sign_in(client, COORDINATOR)
    page, token, submission = open_referral_form(client)
    bad = client.post(
        f"/app/services/{HMG_CT}/refer",
        data={**referral_form(reason=""), "csrf_token": token, "submission_id": submission},
    )
    assert bad.status_code == 422 and f'value="{submission}"' in bad.get_data(as_text=True)
    good = client.post(
        f"/app/services/{HMG_CT}/refer", data={**referral_form(), "csrf_token": token, "submission_id": submission}
    )
    assert good.status_code == 303 and referral_count(people) == 1


# ----------------------------------------------------------------------------- the program's inbox


def buttons(page: str) -> list[str]:
    return re.findall(r'<input type="hidden" name="status" value="([a-z-]+)">', page)


def test_program_staff_accept_and_complete_and_the_coordinator_sees_it(people, client):
    sign_in(client, COORDINATOR)
    referral_url = send_referral(client).headers["Location"]
    referral_path = referral_url[referral_url.index("/app/") :]
    assert buttons(client.get(referral_path).get_data(as_text=True)) == ["cancelled", "entered-in-error"]

    staff_client = people.test_client()
    assert sign_in(staff_client, HMG_STAFF).headers["Location"].endswith("/app/inbox")
    inbox = staff_client.get("/app/inbox")
    assert inbox.headers["Cache-Control"] == "no-store"
    assert f'href="{referral_path}"' in inbox.get_data(as_text=True)
    page = staff_client.get(referral_path).get_data(as_text=True)
    assert buttons(page) == ["accepted", "rejected"]  # exactly the receiver's next statuses
    token = csrf(page)
    version = re.search(r'name="version" value="(\d+)"', page).group(1)
    accepted = staff_client.post(
        referral_path + "/status", data={"status": "accepted", "version": version, "csrf_token": token}
    )
    assert accepted.status_code == 303
    page = staff_client.get(referral_path).get_data(as_text=True)
    assert buttons(page) == ["in-progress", "on-hold", "completed", "failed"]
    version = re.search(r'name="version" value="(\d+)"', page).group(1)
    done = staff_client.post(
        referral_path + "/status",
        data={
            "status": "completed",
            "outcome": "Evaluation booked for 12 December.",
            "version": version,
            "csrf_token": token,
        },
    )
    assert done.status_code == 303

    page = client.get(referral_path).get_data(as_text=True)
    assert 'id="current-status">Completed' in page and "Evaluation booked for 12 December." in page
    assert buttons(page) == []
    assert "Completed" in client.get("/app/referrals").get_data(as_text=True)


def test_declining_needs_a_reason(people, client):
    sign_in(client, COORDINATOR)
    location = send_referral(client).headers["Location"]
    path = location[location.index("/app/") :]
    staff_client = people.test_client()
    sign_in(staff_client, HMG_STAFF)
    page = staff_client.get(path).get_data(as_text=True)
    response = staff_client.post(
        path + "/status", data={"status": "rejected", "version": "1", "csrf_token": csrf(page)}
    )
    assert response.status_code == 422 and "A reason is required" in response.get_data(as_text=True)
    with people.app_context():
        assert db.session.scalar(select(Referral.status)) == "requested"


def test_a_stale_status_change_is_refused_with_a_message(people, client):
    sign_in(client, COORDINATOR)
    location = send_referral(client).headers["Location"]
    path = location[location.index("/app/") :]
    staff_client = people.test_client()
    sign_in(staff_client, HMG_STAFF)
    page = staff_client.get(path).get_data(as_text=True)
    token = csrf(page)
    assert (
        staff_client.post(
            path + "/status", data={"status": "accepted", "version": "1", "csrf_token": token}
        ).status_code
        == 303
    )
    stale = staff_client.post(
        path + "/status", data={"status": "rejected", "reason": "Full", "version": "1", "csrf_token": token}
    )
    assert stale.status_code == 409 and "Someone changed this referral" in stale.get_data(as_text=True)
    with people.app_context():
        assert db.session.scalar(select(Referral.status)) == "accepted"


def test_a_move_the_user_may_not_make_is_refused(people, client):
    sign_in(client, COORDINATOR)
    location = send_referral(client).headers["Location"]
    path = location[location.index("/app/") :]
    page = client.get(path).get_data(as_text=True)
    response = client.post(path + "/status", data={"status": "accepted", "csrf_token": csrf(page)})
    assert response.status_code == 422 and "Only the receiving program" in response.get_data(as_text=True)


def test_another_coordinator_cannot_see_the_referral(people, client):
    sign_in(client, COORDINATOR)
    location = send_referral(client).headers["Location"]
    path = location[location.index("/app/") :]
    other = people.test_client()
    sign_in(other, OTHER_COORDINATOR)
    assert other.get(path).status_code == 404
    assert CHILD not in other.get("/app/referrals").get_data(as_text=True)


def test_the_inbox_filters_by_status(people, client):
    sign_in(client, COORDINATOR)
    send_referral(client)
    staff_client = people.test_client()
    sign_in(staff_client, HMG_STAFF)
    assert CHILD in staff_client.get("/app/inbox?status=requested").get_data(as_text=True)
    assert CHILD not in staff_client.get("/app/inbox?status=completed").get_data(as_text=True)
    assert staff_client.get("/app/inbox?service=nope").status_code == 422
