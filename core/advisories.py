"""Crisis guidance: who to call now when a search's words signal an emergency.

The advisories, their triggers and the public pages their numbers come from are data
(`seed_data/advisories.json`). A trigger is a phrase of normalised words (core.text.normalise:
lower case, accents dropped, apostrophes joined), matched as whole words; an `unless` phrase
hides the words it covers from that advisory's triggers ("flu shot" is not a shooting, "lead
poisoning" is not a poisoning to call about now). English and Spanish triggers sit side by side,
so the language of the request only picks the language of the text.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from functools import lru_cache

from core.text import SEED_DIR, normalise

LANGUAGES = ("en", "es")


@dataclass(frozen=True)
class Advisory:
    id: str
    phone: str
    name: dict[str, str]
    text: dict[str, str]
    sources: tuple[dict, ...]
    triggers: tuple[tuple[str, ...], ...]
    unless: tuple[tuple[str, ...], ...]


@lru_cache(maxsize=1)
def advisories() -> tuple[Advisory, ...]:
    """Every advisory of `seed_data/advisories.json`, in the file's order (the order shown)."""
    data = json.loads((SEED_DIR / "advisories.json").read_text(encoding="utf-8"))
    return tuple(
        Advisory(
            id=item["id"],
            phone=item["phone"],
            name=item["name"],
            text=item["text"],
            sources=tuple(item["sources"]),
            triggers=tuple(p for p in (tuple(normalise(t)) for t in item["triggers"]) if p),
            unless=tuple(p for p in (tuple(normalise(t)) for t in item.get("unless", ())) if p),
        )
        for item in data["advisories"]
    )


def _occurrences(tokens: list[str], phrase: tuple[str, ...]):
    size = len(phrase)
    for start in range(len(tokens) - size + 1):
        if tuple(tokens[start : start + size]) == phrase:
            yield start, start + size


def _raised(advisory: Advisory, tokens: list[str]) -> bool:
    hidden: set[int] = set()
    for phrase in advisory.unless:
        for start, end in _occurrences(tokens, phrase):
            hidden.update(range(start, end))
    return any(
        not hidden.intersection(range(start, end))
        for phrase in advisory.triggers
        for start, end in _occurrences(tokens, phrase)
    )


def advisories_for(query: str | None, lang: str = "en") -> list[dict]:
    """The advisories a search's words raise, as JSON-ready records in `lang` ("en" or "es";
    anything else is English): id, name, phone, text and the public sources of the number.
    An empty list for an ordinary search (a web page shows nothing above its results)."""
    tokens = normalise(query or "")
    if not tokens:
        return []
    lang = lang if lang in LANGUAGES else "en"
    return [
        {
            "id": advisory.id,
            "name": advisory.name.get(lang) or advisory.name["en"],
            "phone": advisory.phone,
            "text": advisory.text.get(lang) or advisory.text["en"],
            "language": lang if lang in advisory.text else "en",
            "sources": [dict(source) for source in advisory.sources],
        }
        for advisory in advisories()
        if _raised(advisory, tokens)
    ]
