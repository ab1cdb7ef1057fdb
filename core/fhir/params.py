"""FHIR search parameter values: dates with their prefixes (and the SQL condition of one),
tokens (`system|code`), references (`Organization/<id>`) and Task statuses. Each parser
raises ValueError on a value it cannot read; the API answers that as a 400."""

from __future__ import annotations

import re
import uuid
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta

from sqlalchemy import or_

from models.vocab import REFERRAL_STATUSES
from schemas.text import RANGE_MESSAGE, datetime_problem


@dataclass
class DateBound:
    """A FHIR date search value: a prefix and the range its precision covers [low, high)."""

    prefix: str
    low: datetime
    high: datetime


DATE_VALUE = re.compile(r"^(eq|ne|gt|lt|ge|le|sa|eb)?(\d{4}(?:-\d{2}(?:-\d{2})?)?(?:T.+)?)$")


def parse_date(value: str) -> DateBound:
    """`gt2026-01-01T00:00:00Z`, `ge2026-01`, `2026-01-01`... Times without an offset are UTC.
    ValueError for a value that is not one, or falls outside the years the API stores
    (schemas.text.datetime_problem, after conversion to UTC)."""
    try:
        bound = _parse_date(value)
    except OverflowError:
        raise ValueError(RANGE_MESSAGE) from None
    if datetime_problem(bound.low):
        raise ValueError(RANGE_MESSAGE)
    return DateBound(bound.prefix, bound.low.astimezone(UTC), bound.high.astimezone(UTC))


def _parse_date(value: str) -> DateBound:
    """The bound of a date search value: an instant (a point) or the day, month or year it names."""
    match = DATE_VALUE.match(value.strip())
    if not match:
        raise ValueError("Not a FHIR date search value.")
    prefix, text = match.group(1) or "eq", match.group(2)
    if "T" in text:
        moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
        if moment.tzinfo is None:
            moment = moment.replace(tzinfo=UTC)
        return DateBound(prefix, moment, moment)
    parts = [int(p) for p in text.split("-")]
    if len(parts) == 1:
        low, high = date(parts[0], 1, 1), date(parts[0] + 1, 1, 1)
    elif len(parts) == 2:
        low = date(parts[0], parts[1], 1)
        high = date(parts[0] + parts[1] // 12, parts[1] % 12 + 1, 1)
    else:
        low = date(*parts)
        high = low + timedelta(days=1)
    as_utc = lambda d: datetime.combine(d, time(0), tzinfo=UTC)  # noqa: E731
    return DateBound(prefix, as_utc(low), as_utc(high))


def date_condition(column, bound: DateBound):
    """The WHERE clause of one date search value on `column`."""
    point = bound.low == bound.high
    if bound.prefix in ("gt", "sa"):
        return column > bound.high if point else column >= bound.high
    if bound.prefix == "ge":
        return column >= bound.low
    if bound.prefix in ("lt", "eb"):
        return column < bound.low
    if bound.prefix == "le":
        return column <= bound.high if point else column < bound.high
    if bound.prefix == "ne":
        return column != bound.low if point else or_(column < bound.low, column >= bound.high)
    return column == bound.low if point else (column >= bound.low) & (column < bound.high)


def changed_after(bound: DateBound) -> datetime:
    """The strict lower bound `core.referrals.list_referrals` takes, for the prefixes that
    have one (gt, sa, ge)."""
    if bound.prefix in ("gt", "sa"):
        return bound.high if bound.low == bound.high else bound.high - timedelta(microseconds=1)
    if bound.prefix == "ge":
        return bound.low - timedelta(microseconds=1)
    raise ValueError("Only gt, sa and ge are supported here.")


def latest_change_after(bounds: list[DateBound]) -> datetime | None:
    """The strictest lower bound of several `_lastUpdated` values (None without any);
    ValueError for a prefix without a lower bound (see `changed_after`)."""
    return max((changed_after(bound) for bound in bounds), default=None)


def split_token(value: str) -> tuple[str | None, str]:
    """`system|code`, `|code` or `code`."""
    if "|" in value:
        system, code = value.split("|", 1)
        return system, code
    return None, value


def reference_id(value: str, resource_type: str) -> uuid.UUID:
    """`Organization/<id>`, a full URL ending so, or a bare id; ValueError when malformed."""
    text = value.strip().rstrip("/")
    parts = text.split("/")
    if len(parts) >= 2:
        if parts[-2] != resource_type:
            raise ValueError(f"Not a reference to a {resource_type}.")
        text = parts[-1]
    return uuid.UUID(text)


def statuses_from(values: list[str]) -> list[str]:
    """Task status search values (comma-separated codes ORed); ValueError on an unknown one."""
    out = []
    for value in values:
        for code in value.split(","):
            code = code.strip()
            if code not in REFERRAL_STATUSES:
                raise ValueError(f"Unknown Task status: use one of {', '.join(REFERRAL_STATUSES)}.")
            out.append(code)
    return out
