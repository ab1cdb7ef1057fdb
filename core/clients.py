"""API clients and their keys. A key is shown once; only its SHA-256 is stored.

Keys look like `occh_<prefix>_<secret>`: the prefix finds the client, the whole key's hash is
compared in constant time.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
import uuid
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.orm import Session

from core.errors import InvalidData, NotFound
from models import ApiClient, ApiClientProgram, Program, utcnow
from models.vocab import SCOPES

EMAIL = re.compile(r"[^@\s]+@[^@\s]+\.[^@\s]+")


def _hash(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


@dataclass
class NewClient:
    client: ApiClient
    key: str


def create_client(
    session: Session, name: str, scopes: list[str], program_slugs: list[str], email: str | None = None
) -> NewClient:
    if not name.strip():
        raise InvalidData("Give the client a name (who the key is for).", {"name": ["Must not be blank."]})
    if email is not None and not EMAIL.fullmatch(email):
        raise InvalidData("The contact e-mail is not an e-mail address.", {"email": ["Not an e-mail address."]})
    unknown = sorted(set(scopes) - set(SCOPES))
    if unknown or not scopes:
        raise InvalidData(f"Scopes must be among: {', '.join(SCOPES)}.", {"scopes": ["Unknown or missing scope."]})
    programs = []
    for slug in program_slugs:
        program = session.scalar(select(Program).where(Program.slug == slug))
        if program is None:
            raise InvalidData(f"No program has the slug {slug!r}.", {"program": ["Unknown program."]})
        programs.append(program)
    if "referrals:manage" in scopes and not programs:
        raise InvalidData(
            "referrals:manage needs at least one --program.", {"program": ["Required for referrals:manage."]}
        )
    prefix = secrets.token_hex(6)
    key = f"occh_{prefix}_{secrets.token_urlsafe(32)}"
    client = ApiClient(
        name=name, key_prefix=prefix, key_hash=_hash(key), scopes=" ".join(sorted(set(scopes))), email=email
    )
    client.programs = [ApiClientProgram(program_id=p.id) for p in programs]
    session.add(client)
    session.flush()
    return NewClient(client=client, key=key)


def authenticate(session: Session, key: str) -> ApiClient | None:
    """The active client whose key this is, or None."""
    parts = key.split("_")
    if len(parts) < 3 or parts[0] != "occh":
        return None
    client = session.scalar(select(ApiClient).where(ApiClient.key_prefix == parts[1]))
    if client is None or client.revoked_at is not None:
        # Compare anyway so that unknown and known prefixes take the same time.
        hmac.compare_digest(_hash(key), "0" * 64)
        return None
    return client if hmac.compare_digest(_hash(key), client.key_hash) else None


def revoke_client(session: Session, client_id: uuid.UUID) -> ApiClient:
    client = session.get(ApiClient, client_id)
    if client is None:
        raise NotFound("No client has this id.")
    if client.revoked_at is None:
        client.revoked_at = utcnow()
    return client


def list_clients(session: Session) -> list[ApiClient]:
    return list(session.scalars(select(ApiClient).order_by(ApiClient.created_at, ApiClient.name)))
