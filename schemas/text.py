"""The one text type of every input, and the range of date-times the API accepts.

Text from a client (a query parameter, a path segment, a JSON body, a FHIR resource, an HSDS
import) holds no NUL character (PostgreSQL cannot store one) and no lone UTF-16 surrogate
(not a character: it cannot be encoded as UTF-8). `text_problem` says what is wrong with a
value; `SafeText` (and `SafeEmail`, `SafeURL`) refuse such a value with a 422 in a marshmallow
schema. A date-time must be representable in UTC between the years `MIN_YEAR` and `MAX_YEAR`
after conversion (`datetime_problem`, `SafeDateTime`). Booleans in bodies are JSON `true` and
`false` only (`StrictBoolean`): `"true"` and `1` are not booleans.

Plain functions, no Flask: core/ (FHIR parsing, the HSDS import) calls them too.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime
from typing import Any

from marshmallow import ValidationError, fields, validate

MIN_YEAR = 1900
MAX_YEAR = 9998
NUL_MESSAGE = "Holds a NUL character."
SURROGATE_MESSAGE = "Holds an unpaired UTF-16 surrogate, which is not a character."
RANGE_MESSAGE = f"Use a date-time between the years {MIN_YEAR} and {MAX_YEAR} (in UTC)."
_BAD = re.compile("[\x00\ud800-\udfff]")
DATETIME_PATTERN = r"^(190[1-9]|19[1-9][0-9]|[2-8][0-9]{3}|9[0-8][0-9]{2}|99[0-8][0-9]|999[0-7])-"


def text_problem(value: str) -> str | None:
    """What is wrong with a client's text, or None."""
    found = _BAD.search(value)
    if found is None:
        return None
    return NUL_MESSAGE if found.group() == "\x00" else SURROGATE_MESSAGE


def check_text(value: str) -> str:
    """The value, or a marshmallow ValidationError (a 422 in a schema)."""
    problem = text_problem(value)
    if problem:
        raise ValidationError(problem)
    return value


def first_text_problem(value: Any, path: str = "") -> tuple[str, str] | None:
    """(where, what) for the first string (key or value) of a JSON value that text_problem
    refuses, or None. `where` is a dotted path (`entry.0.resource.name`)."""
    stack = [(path, value)]
    while stack:
        where, item = stack.pop()
        if isinstance(item, str):
            problem = text_problem(item)
            if problem:
                return where or "(value)", problem
        elif isinstance(item, dict):
            for key, child in item.items():
                key_text = str(key)
                problem = text_problem(key_text)
                inner = f"{where}.{key_text}" if where else key_text
                if problem:
                    return (where or "(value)"), problem
                stack.append((inner, child))
        elif isinstance(item, list):
            stack.extend((f"{where}.{index}" if where else str(index), child) for index, child in enumerate(item))
    return None


def datetime_problem(value: datetime) -> str | None:
    """A date-time out of the range the API stores (naive values are read as UTC)."""
    try:
        utc = value.astimezone(UTC) if value.tzinfo is not None else value
    except (OverflowError, ValueError):
        return RANGE_MESSAGE
    if not MIN_YEAR <= utc.year <= MAX_YEAR:
        return RANGE_MESSAGE
    return None


def has_letter(value: str) -> bool:
    return any(ch.isalpha() for ch in value)


def must_hold_a_letter(value: str) -> None:
    """A validator: a name holds at least one letter (not only digits, spaces or signs)."""
    if not has_letter(value):
        raise ValidationError("Must hold at least one letter.")


class _SafeTextMixin(fields.String):
    """Refuses NUL and lone surrogates before the field's own checks (SafeEmail, SafeURL: the
    Email and URL fields after it in the order of classes)."""

    def _deserialize(self, value, attr, data, **kwargs):
        if isinstance(value, str):
            check_text(value)
        return super()._deserialize(value, attr, data, **kwargs)


class SafeText(_SafeTextMixin, fields.String):
    """A string without NUL or lone surrogates."""


class SafeEmail(_SafeTextMixin, fields.Email):
    """An e-mail address, as SafeText."""


class SafeURL(_SafeTextMixin, fields.URL):
    """A URL, as SafeText."""


class SafeDateTime(fields.AwareDateTime):
    """An ISO 8601 date-time (UTC when it has no offset) within MIN_YEAR..MAX_YEAR in UTC."""

    def __init__(self, **kwargs):
        kwargs.setdefault("default_timezone", UTC)
        # For the OpenAPI document (and so schemathesis): years whose every offset stays in range.
        kwargs["metadata"] = {"pattern": DATETIME_PATTERN, **kwargs.get("metadata", {})}
        super().__init__(**kwargs)

    def _deserialize(self, value, attr, data, **kwargs):
        if isinstance(value, str):
            check_text(value)
        moment = super()._deserialize(value, attr, data, **kwargs)
        problem = datetime_problem(moment)
        if problem:
            raise ValidationError(problem)
        return moment


class StrictBoolean(fields.Boolean):
    """JSON true or false only."""

    truthy = {True}
    falsy = {False}

    def _deserialize(self, value, attr, data, **kwargs):
        if not isinstance(value, bool):
            raise self.make_error("invalid", input=value)
        return value


# A BCP 47 language tag: its primary language subtag (ISO 639, 2 or 3 letters), then any
# subtags (script, region, variant: `es-US`, `zh-Hant-TW`). Every door (query parameters, a
# referral's guardian, a FHIR RelatedPerson) keeps the primary language only, in lower case.
LANGUAGE_TAG = re.compile(r"([A-Za-z]{2,3})(?:-[A-Za-z0-9]{1,8})*")
LANGUAGE_MESSAGE = "Use a language tag: an ISO 639 code (es), optionally with a region (es-US)."


def primary_language(tag: str) -> str | None:
    """`es-US` -> `es`; None when the value is not a language tag."""
    found = LANGUAGE_TAG.fullmatch(tag)
    return found.group(1).lower() if found else None


LANGUAGE_TAG_MAX = 35  # RFC 5646's practical bound on a tag's length


class LanguageTag(SafeText):
    """A BCP 47 language tag, loaded as its primary language subtag in lower case (`es-US` -> `es`).
    The OpenAPI document shows its pattern and length."""

    def __init__(self, **kwargs):
        kwargs.setdefault(
            "validate",
            [validate.Length(max=LANGUAGE_TAG_MAX), validate.Regexp(r"^[A-Za-z]{2,3}(-[A-Za-z0-9]{1,8})*$")],
        )
        super().__init__(**kwargs)

    def _deserialize(self, value, attr, data, **kwargs):
        text = super()._deserialize(value, attr, data, **kwargs)
        language = primary_language(text) if len(text) <= LANGUAGE_TAG_MAX else None
        if language is None:
            raise ValidationError(LANGUAGE_MESSAGE)
        return language
