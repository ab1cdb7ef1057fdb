"""Reading one value of an imported row: one small parser per kind of field, then the field's rules.

A CSV file gives strings; a JSON record gives typed values: every parser takes both. A value is
either read (`(value, None)`) or refused with what is wrong, worded for the import's report
(`(None, "not a UUID")`).
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Callable
from datetime import UTC, date, datetime, time
from typing import Any
from urllib.parse import urlsplit

from core.hsds.profile import Field
from schemas.text import datetime_problem, text_problem

EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
TRUE, FALSE = {"true", "1", "yes"}, {"false", "0", "no"}
# The database's integer columns are 32-bit.
INT_LOW, INT_HIGH = -(2**31), 2**31 - 1


class Refused(ValueError):
    """A value that cannot be read as its field's kind; the message says why."""


def parse_value(spec: Field, raw: Any) -> tuple[Any, str | None]:
    """(value, None) or (None, what is wrong). An empty value is None, or "required"."""
    if raw is None or raw == "":
        return None, ("required" if spec.required else None)
    try:
        value = PARSERS[spec.kind](raw)
    except Refused as refused:
        return None, str(refused)
    for check in CHECKS:
        problem = check(spec, value)
        if problem:
            return None, problem
    return value, None


# --------------------------------------------------------------------------- one parser per kind


def parse_uuid(raw: Any) -> uuid.UUID:
    if not isinstance(raw, str):
        raise Refused("not a UUID")
    try:
        return uuid.UUID(raw)
    except ValueError:
        raise Refused("not a UUID") from None


def parse_string(raw: Any) -> str:
    """Text, or a number given in a JSON record (kept as its text); never NUL or a lone surrogate."""
    if isinstance(raw, (dict, list, bool)):
        raise Refused("not text")
    value = raw if isinstance(raw, str) else str(raw)
    problem = text_problem(value)
    if problem:
        raise Refused(problem[0].lower() + problem[1:].rstrip("."))
    return value


def _finite(raw: Any, what: str) -> float:
    """A finite number from a number or its text; `what` names the kind in the refusal."""
    if isinstance(raw, bool) or not isinstance(raw, (str, int, float)):
        raise Refused(f"not {what}")
    try:
        number = float(raw)
    except (ValueError, OverflowError):
        raise Refused(f"not {what}") from None
    if number != number or number in (float("inf"), float("-inf")):
        raise Refused("not a number")
    return number


def parse_number(raw: Any) -> float:
    return _finite(raw, "a number")


def parse_integer(raw: Any) -> int:
    number = _finite(raw, "an integer")
    if not number.is_integer():
        raise Refused("not an integer")
    value = int(number)
    if not INT_LOW <= value <= INT_HIGH:
        raise Refused("outside the integer range")
    return value


def parse_boolean(raw: Any) -> bool:
    """true / false in JSON; true, 1, yes / false, 0, no (any case) in text."""
    if isinstance(raw, bool):
        return raw
    if isinstance(raw, str) and raw.strip().lower() in TRUE | FALSE:
        return raw.strip().lower() in TRUE
    raise Refused("not true or false")


def parse_datetime(raw: Any) -> datetime:
    """An ISO 8601 date-time, read as UTC when it gives no offset, within the years stored."""
    if not isinstance(raw, str):
        raise Refused("not an ISO 8601 date-time")
    try:
        value = datetime.fromisoformat(raw)
    except ValueError:
        raise Refused("not an ISO 8601 date-time") from None
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    if datetime_problem(value):
        raise Refused("outside the years 1900 to 9998")
    return value


PARSERS: dict[str, Callable[[Any], Any]] = {
    "uuid": parse_uuid,
    "string": parse_string,
    "number": parse_number,
    "integer": parse_integer,
    "boolean": parse_boolean,
    "datetime": parse_datetime,
}


# --------------------------------------------------------------------------- the field's rules


def _too_long(spec: Field, value: Any) -> str | None:
    if spec.max_length is not None and len(value) > spec.max_length:
        return f"longer than {spec.max_length} characters"
    return None


def _not_a_choice(spec: Field, value: Any) -> str | None:
    if spec.choices is not None and value not in spec.choices:
        return "not one of " + ", ".join(spec.choices)
    return None


def _out_of_range(spec: Field, value: Any) -> str | None:
    if spec.low is not None and value < spec.low or spec.high is not None and value > spec.high:
        return (
            f"must be between {spec.low:g} and {spec.high:g}"
            if spec.high is not None
            else f"must be at least {spec.low:g}"
        )
    return None


FORMAT_PROBLEMS = {
    "email": "not an e-mail address",
    "uri": "not a URL",
    "date": "not an ISO 8601 date",
    "time": "not an ISO 8601 time",
}


def _badly_formatted(spec: Field, value: Any) -> str | None:
    if spec.format and not is_formatted(spec.format, value):
        return FORMAT_PROBLEMS[spec.format]
    return None


CHECKS: tuple[Callable[[Field, Any], str | None], ...] = (_too_long, _not_a_choice, _out_of_range, _badly_formatted)


def is_formatted(kind: str, value: str) -> bool:
    """Whether text is an e-mail address, a URL (with a host, or mailto:, tel:, urn:), or an
    ISO 8601 date or time, as `kind` asks."""
    if kind == "email":
        return bool(EMAIL.match(value))
    if kind == "uri":
        parts = urlsplit(value)
        return bool(parts.scheme and (parts.netloc or parts.scheme in ("mailto", "tel", "urn")))
    try:
        (date if kind == "date" else time).fromisoformat(value)
    except ValueError:
        return False
    return True
