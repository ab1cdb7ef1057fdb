"""Filter tags: what a service can be filtered by, written as opaque words into its search row.

Every list filter that names a value (status, category and every category above it, taxonomy,
town, statewide or unstated coverage, language, organization, program) becomes one tag word per value,
indexed beside the service's text. A filter is then a full-text condition like any other:
`(tag a OR tag b) AND tag c`, answered from the same index as the search words (FTS5 on
SQLite, a GIN-indexed tsvector on PostgreSQL), with no join, no recursive query over the
taxonomy, and a count that needs nothing but the index.

A tag is `z` followed by the decimal digits of a 60-bit hash of its kind and value, so it is a
single token for both engines' tokenizers, untouched by stemming, and never a word of the
directory's text (search words are matched in the text columns only).
"""

from __future__ import annotations

import hashlib
import uuid
from collections.abc import Iterable

STATUS = "status"
TERM = "term"
TAXONOMY = "taxonomy"
TOWN = "town"
STATEWIDE = "statewide"
AREA_UNSTATED = "area-unstated"  # no service area names a town or is statewide
LANGUAGE = "language"
ORGANIZATION = "organization"
PROGRAM = "program"


def tag(kind: str, value: object = "") -> str:
    """The tag word for one filter value; names are compared case-insensitively."""
    text = f"{kind}:{str(value).strip().lower()}"
    digest = hashlib.blake2b(text.encode("utf-8"), digest_size=8).digest()
    return "z" + str(int.from_bytes(digest, "big") >> 4)


def service_tags(
    *,
    status: str,
    organization_id: uuid.UUID,
    program_id: uuid.UUID | None,
    term_ids: Iterable[uuid.UUID],
    taxonomy_ids: Iterable[uuid.UUID],
    towns: Iterable[str],
    statewide: bool,
    languages: Iterable[str],
) -> str:
    """The tag words of one service, space-separated, sorted (stable across rewrites).

    `term_ids` holds the service's categories and every category above them, so a filter on
    a category also finds the services filed under the categories below it."""
    words = {tag(STATUS, status), tag(ORGANIZATION, organization_id)}
    if program_id is not None:
        words.add(tag(PROGRAM, program_id))
    words.update(tag(TERM, term_id) for term_id in term_ids)
    words.update(tag(TAXONOMY, taxonomy_id) for taxonomy_id in taxonomy_ids)
    towns = list(towns)
    words.update(tag(TOWN, town) for town in towns)
    if statewide:
        words.add(tag(STATEWIDE))
    elif not towns:
        # Silence is not exclusion: a service that states no area is kept by a town or ZIP filter.
        words.add(tag(AREA_UNSTATED))
    words.update(tag(LANGUAGE, code) for code in languages if code)
    return " ".join(sorted(words))
