"""Tolerant readers of FHIR JSON sent by a client: each takes whatever the element holds
(a wrong type included) and gives a value of the expected kind or None, so that a Bundle's
values reach the request validation that names the field at fault, rather than a TypeError."""

from __future__ import annotations

from core.fhir.common import RELATIONSHIP_OF
from models.vocab import GUARDIAN_RELATIONSHIPS


def first(items, default=None):
    """The first item of a list; `default` when it is empty or not a list."""
    return items[0] if isinstance(items, list) and items else default


def as_dict(value) -> dict:
    return value if isinstance(value, dict) else {}


def as_list(value) -> list:
    return value if isinstance(value, list) else []


def put(target: dict, key: str, value) -> None:
    """Set `target[key]` unless the value is absent (None or empty text)."""
    if value is not None and value != "":
        target[key] = value


def text_of_name(name) -> str | None:
    """A HumanName as one string: its text, else its given names and family name."""
    if not isinstance(name, dict):
        return None
    if isinstance(name.get("text"), str):
        return name["text"]
    words = [w for w in as_list(name.get("given")) if isinstance(w, str)]
    if isinstance(name.get("family"), str):
        words.append(name["family"])
    return " ".join(words) or None


def extension(resource: dict, url: str) -> dict:
    """The resource's extension with this URL ({} when it has none)."""
    return next((e for e in as_list(resource.get("extension")) if isinstance(e, dict) and e.get("url") == url), {})


def codes(concepts) -> list[str]:
    """Every code, then the text, of each CodeableConcept of a list, in order."""
    out = []
    for concept in as_list(concepts):
        for coding in as_list(as_dict(concept).get("coding")):
            if isinstance(as_dict(coding).get("code"), str):
                out.append(coding["code"])
        if isinstance(as_dict(concept).get("text"), str):
            out.append(concept["text"])
    return out


def concept_text(concept) -> str | None:
    """A CodeableConcept as words: its text, else its first coding's display."""
    concept = as_dict(concept)
    if isinstance(concept.get("text"), str):
        return concept["text"]
    return next(
        (c["display"] for c in map(as_dict, as_list(concept.get("coding"))) if isinstance(c.get("display"), str)), None
    )


def relationship(concepts) -> str | None:
    """A guardian relationship from RelatedPerson.relationship: a v3 RoleCode mapped to this
    API's word, one of its words, else the first code or text as sent (validation refuses it)."""
    found = codes(concepts)
    for code in found:
        if code in RELATIONSHIP_OF:
            return RELATIONSHIP_OF[code]
        if code.lower() in GUARDIAN_RELATIONSHIPS or code.lower() == "self":
            return code.lower()
    return found[0] if found else None
