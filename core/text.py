"""Turning what people type into search terms: normalising, stop words, synonyms, typos.

Query terms are plain lower-case ASCII letters and digits only, so nothing a user types can
reach a full-text engine as syntax (quotes, operators, `*`, `NEAR`, ...).
"""
from __future__ import annotations

import csv
import re
import unicodedata
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

SEED_DIR = Path(__file__).resolve().parent.parent / "seed_data"
MAX_QUERY_LENGTH = 200
MAX_TERMS = 40
MIN_WORD = 2

STOP_WORDS = frozenset(
    """a about above after again against all am an and any are as at be because been before being
    below between both but by can could did do does doing down during each few for from further
    had has have having he her here hers herself him himself his how i if in into is it its itself
    just me more most my myself no nor not now of off on once only or other our ours ourselves out
    over own same she should so some such than that the their theirs them themselves then there
    these they this those through to too under until up very was we were what when where which
    while who whom why will with would you your yours yourself yourselves yet still keeps keep get
    got need needs needed want wants im ive dont doesnt isnt wont cant arent wasnt please looking""".split()
)

_APOSTROPHES = re.compile(r"['\u2019\u2018`\u00b4]")
_NON_WORD = re.compile(r"[^a-z0-9]+")


def normalise(text: str) -> list[str]:
    """Lower-case ASCII words: accents dropped, apostrophes joined (`isn't` -> `isnt`)."""
    text = text or ""
    if not text.isascii():  # ASCII has nothing to decompose: skip the walk over each character
        text = unicodedata.normalize("NFKD", text)
        text = "".join(ch for ch in text if not unicodedata.combining(ch))
    text = text.lower()
    text = _APOSTROPHES.sub("", text)
    return [word for word in _NON_WORD.split(text) if word]


def index_words(text: str) -> set[str]:
    """The words of indexed text that typo correction may suggest."""
    return {w for w in normalise(text) if len(w) >= 3 and w.isalpha() and len(w) <= 64}


@lru_cache(maxsize=1)
def synonyms() -> dict[tuple[str, ...], tuple[str, ...]]:
    """`seed_data/synonyms.csv`: a phrase as families say it -> words of the directory."""
    table: dict[tuple[str, ...], tuple[str, ...]] = {}
    with (SEED_DIR / "synonyms.csv").open(newline="", encoding="utf-8") as handle:
        for row in csv.DictReader(handle):
            phrase = tuple(normalise(row["phrase"]))
            if phrase:
                table[phrase] = tuple(dict.fromkeys(table.get(phrase, ()) + tuple(normalise(row["expands_to"]))))
    return table


@dataclass
class ParsedQuery:
    words: list[str]  # the user's own words, stop words removed
    expansions: list[str]  # words added by synonyms
    protected: set[str]  # words that took part in a synonym: never "corrected"

    @property
    def terms(self) -> list[str]:
        return list(dict.fromkeys(self.words + self.expansions))[:MAX_TERMS]


def parse(query: str) -> ParsedQuery:
    tokens = normalise(query)
    table = synonyms()
    longest = max((len(phrase) for phrase in table), default=1)
    expansions: list[str] = []
    protected: set[str] = set()
    i = 0
    while i < len(tokens):
        for size in range(min(longest, len(tokens) - i), 0, -1):
            phrase = tuple(tokens[i : i + size])
            if phrase in table:
                expansions.extend(table[phrase])
                protected.update(phrase)
                # Overlapping phrases may also match ("gun violence" and "violence").
                break
        i += 1
    words = [t for t in tokens if t not in STOP_WORDS and len(t) >= MIN_WORD]
    return ParsedQuery(words=list(dict.fromkeys(words)), expansions=expansions, protected=protected)


def edit_distance(a: str, b: str) -> int:
    """Optimal string alignment distance (Levenshtein plus adjacent transpositions)."""
    if a == b:
        return 0
    previous2: list[int] = []
    previous = list(range(len(b) + 1))
    for i, ca in enumerate(a, 1):
        current = [i] + [0] * len(b)
        for j, cb in enumerate(b, 1):
            cost = 0 if ca == cb else 1
            current[j] = min(previous[j] + 1, current[j - 1] + 1, previous[j - 1] + cost)
            if i > 1 and j > 1 and ca == b[j - 2] and a[i - 2] == cb:
                current[j] = min(current[j], previous2[j - 2] + 1)
        previous2, previous = previous, current
    return previous[-1]


def allowed_typos(word: str) -> int:
    if len(word) < 4:
        return 0
    return 1 if len(word) <= 5 else 2


def deletions(word: str) -> set[str]:
    """The word with each one letter removed (symmetric-delete typo lookup)."""
    return {word[:i] + word[i + 1 :] for i in range(len(word))}
