"""Staff accounts of the web app: create, disable, sign in (Argon2 hashes, lockout).

A staff user acts through a backing ApiClient with the scopes of the role and no usable key
(its prefix is not in the `occh_` form core.clients.authenticate accepts, its hash matches no
key), so every action is checked by the same core rules as an API client's and audited under it.
"""

from __future__ import annotations

import secrets
import uuid
from datetime import timedelta

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from core.errors import Conflict, InvalidData, NotFound
from models import ApiClient, ApiClientProgram, Program, StaffUser, utcnow

ROLES = ("coordinator", "program_staff", "admin")
ROLE_SCOPES = {
    "coordinator": ("referrals:submit",),
    "program_staff": ("referrals:manage", "directory:write"),
    "admin": ("directory:admin",),  # edits every listing, as an API key with that scope
}
MIN_PASSWORD = 12
MAX_PASSWORD = 1024
LOCKOUT_AFTER = 5  # failed sign-ins in a row
LOCKOUT_FOR = timedelta(minutes=15)

_hasher = PasswordHasher()
# Verified when no account has the e-mail, so unknown and known addresses cost the same time.
_DUMMY_HASH = _hasher.hash(secrets.token_urlsafe(16))


def normalise_email(email: str) -> str:
    return email.strip().lower()


def create_staff(session: Session, email: str, password: str, role: str, program_slug: str | None) -> StaffUser:
    """A new staff account and its backing client; the caller commits."""
    email = normalise_email(email)
    if "@" not in email or len(email) > 254:
        raise InvalidData("Give a valid e-mail address.", {"email": ["Not a valid e-mail address."]})
    if role not in ROLES:
        raise InvalidData(f"The role must be one of: {', '.join(ROLES)}.", {"role": ["Unknown role."]})
    if not MIN_PASSWORD <= len(password) <= MAX_PASSWORD:
        raise InvalidData(
            f"The password must be {MIN_PASSWORD} to {MAX_PASSWORD} characters.", {"password": ["Wrong length."]}
        )
    program = None
    if program_slug:
        program = session.scalar(select(Program).where(Program.slug == program_slug))
        if program is None:
            raise InvalidData(f"No program has the slug {program_slug!r}.", {"program": ["Unknown program."]})
    if role == "program_staff" and program is None:
        raise InvalidData("A program_staff account needs --program.", {"program": ["Required for program_staff."]})
    if session.scalar(select(StaffUser.id).where(StaffUser.email == email)) is not None:
        raise Conflict("A staff account with this e-mail exists.", {"email": ["Already in use."]})
    client = ApiClient(
        name=f"staff:{email}",
        key_prefix="web-" + secrets.token_hex(6),
        key_hash="!" * 64,  # no key hashes to this
        scopes=" ".join(sorted(ROLE_SCOPES[role])),
    )
    if program is not None and role == "program_staff":
        client.programs = [ApiClientProgram(program_id=program.id)]
    session.add(client)
    session.flush()
    user = StaffUser(
        email=email,
        password_hash=_hasher.hash(password),
        role=role,
        program_id=program.id if program else None,
        client_id=client.id,
        disabled=False,
        failed_logins=0,
    )
    session.add(user)
    session.flush()
    return user


def find_staff(session: Session, email: str) -> StaffUser | None:
    return session.scalar(select(StaffUser).where(StaffUser.email == normalise_email(email)))


def disable_staff(session: Session, email: str) -> StaffUser:
    """Disable an account: it cannot sign in, and its open sessions end at their next request."""
    user = find_staff(session, email)
    if user is None:
        raise NotFound("No staff account has this e-mail.")
    user.disabled = True
    if user.client.revoked_at is None:
        user.client.revoked_at = utcnow()
    return user


def get_active_staff(session: Session, user_id: uuid.UUID) -> StaffUser | None:
    user = session.get(StaffUser, user_id)
    return None if user is None or user.disabled else user


class LockedOut(Exception):
    """Too many failed sign-ins in a row: the account waits LOCKOUT_FOR."""


def authenticate_staff(session: Session, email: str, password: str) -> StaffUser | None:
    """The account these credentials open, or None; raises LockedOut while locked. Counts
    failures and locks after LOCKOUT_AFTER in a row; the caller commits either way."""
    user = find_staff(session, email) if len(password) <= MAX_PASSWORD else None
    if user is None:
        try:
            _hasher.verify(_DUMMY_HASH, password[:MAX_PASSWORD] + "x")
        except VerificationError:
            pass
        return None
    now = utcnow()
    if user.locked_until is not None and user.locked_until > now:
        raise LockedOut()
    try:
        _hasher.verify(user.password_hash, password)
        ok = not user.disabled
    except (VerificationError, InvalidHashError):
        ok = False
    if not ok:
        user.failed_logins = (user.failed_logins or 0) + 1
        if user.failed_logins >= LOCKOUT_AFTER:
            user.locked_until = now + LOCKOUT_FOR
            user.failed_logins = 0
        return None
    user.failed_logins = 0
    user.locked_until = None
    user.last_sign_in_at = now
    if _hasher.check_needs_rehash(user.password_hash):
        user.password_hash = _hasher.hash(password)
    return user


def count_staff(session: Session) -> int:
    return session.execute(select(func.count(StaffUser.id))).scalar_one()
