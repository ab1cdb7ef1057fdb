"""Turning what people type into search terms: normalising, stop words, synonyms, typos.

Query terms are plain lower-case ASCII letters and digits only, so nothing a user types can
reach a full-text engine as syntax (quotes, operators, `*`, `NEAR`, ...).
"""

from __future__ import annotations

import csv
import re
import threading
import unicodedata
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import snowballstemmer

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


def _read_synonyms(name: str, key) -> dict[tuple[str, ...], tuple[str, ...]]:
    """A synonym file: phrase -> words of the directory (a row with no `expands_to` keeps its
    phrase from shorter phrases and from typo correction: "flu shot" is not a shooting)."""
    table: dict[tuple[str, ...], tuple[str, ...]] = {}
    with (SEED_DIR / name).open(newline="", encoding="utf-8") as handle:
        for row in csv.DictReader(handle):
            phrase = key(normalise(row["phrase"]))
            if phrase:
                table[phrase] = tuple(dict.fromkeys(table.get(phrase, ()) + tuple(normalise(row["expands_to"] or ""))))
    return table


@lru_cache(maxsize=1)
def synonyms() -> dict[tuple[str, ...], tuple[str, ...]]:
    """`seed_data/synonyms.csv`: a phrase as families say it -> words of the directory."""
    return _read_synonyms("synonyms.csv", tuple)


_SPANISH = snowballstemmer.stemmer("spanish")
_STEMMER_LOCK = threading.Lock()  # a Snowball stemmer keeps state while it stems


@lru_cache(maxsize=20000)
def spanish_key(word: str) -> str:
    """What a Spanish word is matched by: its Snowball stem ("pañales" and "pañal" are one),
    or the word itself when the stem would be under four letters (so "comida" never meets the
    English "come")."""
    with _STEMMER_LOCK:
        stem = _SPANISH.stemWord(word)
    return stem if len(stem) >= 4 else word


def spanish_keys(tokens) -> tuple[str, ...]:
    return tuple(spanish_key(token) for token in tokens)


@lru_cache(maxsize=1)
def spanish_synonyms() -> dict[tuple[str, ...], tuple[str, ...]]:
    """`seed_data/synonyms_es.csv`: a Spanish phrase as families say it -> English words of the
    directory, keyed by the Spanish stems of its words (accents folded)."""
    return _read_synonyms("synonyms_es.csv", spanish_keys)


def _word_file(name: str) -> frozenset[str]:
    words = set()
    for line in (SEED_DIR / name).read_text(encoding="utf-8").splitlines():
        if line.strip() and not line.lstrip().startswith("#"):
            words.update(normalise(line))
    return frozenset(words)


@lru_cache(maxsize=1)
def spanish_stop_words() -> frozenset[str]:
    """`seed_data/stop_words_es.txt`: Spanish words never searched."""
    return _word_file("stop_words_es.txt")


@lru_cache(maxsize=1)
def low_weight_words() -> frozenset[str]:
    """`seed_data/low_weight_words.txt`: generic words ("help", "need", "services", "my"),
    searched only when a query has no other word."""
    return _word_file("low_weight_words.txt")


@dataclass
class ParsedQuery:
    words: list[str]  # the user's own words, stop words removed
    expansions: list[str]  # words added by synonyms
    protected: set[str]  # words that took part in a synonym: never "corrected"
    language: str = "en"  # "es" when Spanish phrases or Spanish stop words were found

    @property
    def terms(self) -> list[str]:
        """The words searched: generic words (low_weight_words) only when nothing else is left."""
        every = list(dict.fromkeys(self.words + self.expansions))
        low = low_weight_words()
        content = [term for term in every if term not in low]
        return (content or every)[:MAX_TERMS]

    @property
    def content_words(self) -> list[str]:
        """The user's words that are not generic (what typo correction looks at)."""
        low = low_weight_words()
        return [word for word in self.words if word not in low]


def parse(query: str) -> ParsedQuery:
    tokens = normalise(query)
    english, spanish = synonyms(), spanish_synonyms()
    keys = spanish_keys(tokens)
    longest = max((len(phrase) for phrase in (*english, *spanish)), default=1)
    expansions: list[str] = []
    protected: set[str] = set()
    spanish_found = False
    i = 0
    while i < len(tokens):
        size = 0
        for size in range(min(longest, len(tokens) - i), 0, -1):
            phrase, stems = tuple(tokens[i : i + size]), keys[i : i + size]
            if phrase in english:
                expansions.extend(english[phrase])
                break
            if stems in spanish:
                expansions.extend(spanish[stems])
                spanish_found = True
                break
        else:
            size = 0
        if size:
            protected.update(tokens[i : i + size])
            # The words of a phrase are not matched again by a shorter phrase inside it
            # ("flu shot" keeps "shot" from the violence program).
            i += size
        else:
            i += 1
    spanish_stops = spanish_stop_words()
    words = [t for t in tokens if t not in STOP_WORDS and t not in spanish_stops and len(t) >= MIN_WORD]
    spanish_hint = sum(1 for t in tokens if t in spanish_stops and t not in STOP_WORDS)
    language = "es" if spanish_found or spanish_hint > sum(1 for t in tokens if t in STOP_WORDS) else "en"
    return ParsedQuery(words=list(dict.fromkeys(words)), expansions=expansions, protected=protected, language=language)


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
