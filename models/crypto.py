"""Encryption at rest of personal fields: AES-256-GCM with keys from the environment.

A value is stored as text `"<key id>:<base64(12-byte nonce + ciphertext and tag)>"`; the
associated data is the column's `table.column`, so a value copied into another column does not
decrypt. The current key encrypts; every configured key decrypts (old keys stay readable until
`flask keys rotate` has re-encrypted every value under the current key).

A process has one keyring, set by `configure` (the app factory calls it from
`DATA_ENCRYPTION_KEY` and `DATA_ENCRYPTION_KEYS`). No Flask import here.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import os
import re
from dataclasses import dataclass, field
from datetime import date

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from sqlalchemy import Text
from sqlalchemy.sql import operators
from sqlalchemy.types import TypeDecorator

KEY_ID = re.compile(r"^[A-Za-z0-9_-]{1,32}$")


class EncryptionKeyError(ValueError):
    """A key setting is missing or malformed, or a stored value names a key not configured."""


@dataclass
class Keyring:
    current: str | None = None
    keys: dict[str, AESGCM] = field(default_factory=dict)


_keyring = Keyring()


def parse_key(text: str) -> tuple[str, bytes]:
    """`base64 of 32 bytes`, or `kid:base64`; without a kid, the key's id is derived from it."""
    text = text.strip()
    kid, _, encoded = text.rpartition(":")
    try:
        raw = base64.b64decode(encoded, validate=True)
    except (binascii.Error, ValueError):
        raw = b""
    if len(raw) != 32:
        raise EncryptionKeyError("a data encryption key must be 32 random bytes in base64 (optionally 'id:key').")
    if not kid:
        kid = "k" + hashlib.sha256(raw).hexdigest()[:8]
    if not KEY_ID.fullmatch(kid):
        raise EncryptionKeyError("a data encryption key id is 1 to 32 letters, digits, '-' or '_'.")
    return kid, raw


def configure(current: str, others: list[str] | tuple[str, ...] = ()) -> str:
    """Set the process's keyring: `current` encrypts, it and `others` decrypt. Returns the
    current key id."""
    if not current or not current.strip():
        raise EncryptionKeyError("DATA_ENCRYPTION_KEY is not set.")
    kid, raw = parse_key(current)
    keys = {kid: AESGCM(raw)}
    for text in others:
        if text.strip():
            other_id, other_raw = parse_key(text)
            keys.setdefault(other_id, AESGCM(other_raw))
    _keyring.current, _keyring.keys = kid, keys
    return kid


def current_key_id() -> str | None:
    return _keyring.current


def new_key() -> str:
    """A fresh key, as the settings take it."""
    return base64.b64encode(os.urandom(32)).decode()


def encrypt(plaintext: str, associated: str) -> str:
    if _keyring.current is None:
        raise EncryptionKeyError("No data encryption key is configured (DATA_ENCRYPTION_KEY).")
    nonce = os.urandom(12)
    sealed = _keyring.keys[_keyring.current].encrypt(nonce, plaintext.encode("utf-8"), associated.encode())
    return f"{_keyring.current}:{base64.b64encode(nonce + sealed).decode()}"


def key_id_of(stored: str) -> str:
    return stored.partition(":")[0]


def decrypt(stored: str, associated: str) -> str:
    kid, _, encoded = stored.partition(":")
    key = _keyring.keys.get(kid)
    if key is None:
        raise EncryptionKeyError(
            f"A stored value was encrypted with key '{kid}', which is not configured (DATA_ENCRYPTION_KEYS)."
        )
    blob = base64.b64decode(encoded)
    try:
        return key.decrypt(blob[:12], blob[12:], associated.encode()).decode("utf-8")
    except InvalidTag:
        raise EncryptionKeyError(
            f"A value stored under key '{kid}' does not decrypt with the configured key of that id."
        ) from None


class EncryptedText(TypeDecorator):
    """A text column stored encrypted; `associated` names it (`table.column`).

    The database sees only ciphertext (a new nonce each time), so a comparison in SQL could
    never match: any operator but IS [NOT] NULL on such a column raises at once, so nothing
    searches by it by mistake. Nothing may sort by it either (ORDER BY would sort ciphertext)."""

    impl = Text
    cache_ok = True

    class comparator_factory(TypeDecorator.Comparator):
        def operate(self, op, *other, **kwargs):
            if op in (operators.is_, operators.is_not):
                return super().operate(op, *other, **kwargs)
            raise TypeError("An encrypted column cannot be compared or searched in SQL.")

        def reverse_operate(self, op, other, **kwargs):
            raise TypeError("An encrypted column cannot be compared or searched in SQL.")

    def __init__(self, associated: str, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.associated = associated

    def process_bind_param(self, value, dialect):
        if value is None:
            return None
        return encrypt(self.to_text(value), self.associated)

    def process_result_value(self, value, dialect):
        if value is None:
            return None
        return self.from_text(decrypt(value, self.associated))

    def to_text(self, value) -> str:
        return str(value)

    def from_text(self, text: str):
        return text


class EncryptedDate(EncryptedText):
    """A date stored encrypted (ISO 8601 inside)."""

    cache_ok = True

    def to_text(self, value) -> str:
        return value.isoformat()

    def from_text(self, text: str):
        return date.fromisoformat(text)


def encrypted_columns(metadata) -> list[tuple[str, str]]:
    """(table, column) of every encrypted column in `metadata`."""
    return [
        (table.name, column.name)
        for table in metadata.sorted_tables
        for column in table.columns
        if isinstance(column.type, EncryptedText)
    ]
