"""Full-text search over services, on SQLite FTS5 (BM25) or PostgreSQL (weighted tsvector).

Both engines index the same denormalised text (`service_search`), written in the same
transaction as the service, so a change is searchable as soon as the write returns. Field
weights: name > category > program > eligibility and service area > description and
organization. Queries are ORs of plain words (the user's words, synonym expansions and typo
corrections), ranked by the engine, or, for a page ranked by relevance with no row condition,
by each process's Tantivy index (SEARCH_RANKER=tantivy, the default; core.ranking), which is
built from `service_search` and kept in step with it through the `search_change` log.

The index is written by `core.search_index` (its names are re-exported here); this module
reads it: criteria, hits, ranking, counts and typo corrections.
"""

from __future__ import annotations

import uuid
import weakref
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import Engine, Float, Integer, Uuid, cast, false, func, null, select, text
from sqlalchemy.orm import Session
from sqlalchemy.types import TypeEngine

from core.search_index import (  # noqa: F401  (re-exported: callers index through core.search)
    SERVICES_PER_INDEX_BATCH,
    WORDS_PER_STATEMENT,
    AreaText,
    ancestry,
    category_names,
    dialect,
    index_service,
    index_services,
    location_point,
    reindex,
    remember_words,
    search_fields,
    tag_text,
)
from core.text import ParsedQuery, allowed_typos, deletions, edit_distance, index_words, normalise, parse  # noqa: F401
from models import SearchWord, SearchWordVariant, ServiceSearch

# BM25 weights of the FTS5 columns, in table order:
# name, program, category, eligibility, area, description, organization, and the filter tags
# (which never count towards relevance).
SQLITE_WEIGHTS = "10.0, 4.0, 5.0, 3.0, 3.0, 1.0, 1.0, 0.0"


# --------------------------------------------------------------------------- matching

# The columns search words are matched in (never `tag_text`, which holds the filter tags).
SQLITE_TEXT_COLUMNS = (
    "{name_text program_text category_text eligibility_text area_text description_text organization_text}"
)


@dataclass
class Criteria:
    """What a list asks of the index: search words (any of them), and filter tag groups (every
    group, any tag within a group; see core.tags). An empty group matches nothing."""

    terms: list[str] = field(default_factory=list)
    tag_groups: list[list[str]] = field(default_factory=list)

    @property
    def impossible(self) -> bool:
        return any(not group for group in self.tag_groups)

    @property
    def unconstrained(self) -> bool:
        return not self.terms and not self.tag_groups


def search_terms(session: Session, query: str) -> list[str]:
    """The words to look for: the user's own, synonym expansions and typo corrections."""
    parsed = parse(query)
    return list(dict.fromkeys(parsed.terms + corrections(session, parsed)))


def _sqlite_match(criteria: Criteria) -> str:
    parts = []
    if criteria.terms:
        parts.append(f"{SQLITE_TEXT_COLUMNS} : (" + " OR ".join(f'"{term}"' for term in criteria.terms) + ")")
    parts += ["tag_text : (" + " OR ".join(group) + ")" for group in criteria.tag_groups]
    return " AND ".join(parts)


def _postgresql_where(criteria: Criteria) -> tuple[str, str, dict]:
    """(FROM addition, WHERE clause, parameters) of a PostgreSQL match."""
    conditions, params, source = [], {}, ""
    if criteria.terms:
        source = ", to_tsquery('english'::regconfig, :q) AS q"
        conditions.append("document @@ q")
        params["q"] = " | ".join(criteria.terms)
    if criteria.tag_groups:
        conditions.append("tags @@ to_tsquery('simple'::regconfig, :t)")
        params["t"] = " & ".join("(" + " | ".join(group) + ")" for group in criteria.tag_groups)
    return source, " AND ".join(conditions), params


# PostgreSQL ranks with the RUM index (the `rum` extension, migration 0007) when it is there:
# its score is a cover-density rank with the same weights per field class (A 1.0, B 0.4,
# C 0.2, D 0.1) as ts_rank's defaults, and `document <=> q` is 1 / score.
RUM_INDEX = "ix_service_search_document_rum"
RUM_SCORE = "1.0 / (document <=> q)"
_rum_by_engine: weakref.WeakKeyDictionary[Engine, bool] = weakref.WeakKeyDictionary()


def ranks_in_index(session: Session) -> bool:
    """Whether this PostgreSQL database has the RUM ranking index (looked up once per engine;
    without it, matches are ranked with ts_rank over the GIN index's matches)."""
    engine = session.get_bind().engine  # an Engine's .engine is itself, a Connection's its engine
    if engine not in _rum_by_engine:
        found = session.execute(text("SELECT 1 FROM pg_indexes WHERE indexname = :name"), {"name": RUM_INDEX}).first()
        _rum_by_engine[engine] = found is not None
    return _rum_by_engine[engine]


def _postgresql_score(session: Session) -> str:
    return RUM_SCORE if ranks_in_index(session) else "ts_rank(document, q)"


def hits(session: Session, criteria: Criteria):
    """A subquery (service_id, score) of the services matching `criteria` (words or tags: a
    list with neither is answered from the services table, see core.directory.plan), unordered.
    `score` (higher is better) is the engine's relevance when there are search words, else NULL;
    `tiebreak` orders equal scores as `top_hits` does (the index row on SQLite, the service id
    on PostgreSQL), so a list streamed whole comes in the order of its pages."""
    engine = dialect(session)
    tiebreak: TypeEngine[Any] = Uuid() if engine == "postgresql" else Integer()
    columns: dict[str, TypeEngine[Any]] = {"service_id": Uuid(), "score": Float(), "tiebreak": tiebreak}
    if criteria.impossible:
        # A typed NULL: PostgreSQL would read an untyped one as text, which a Float column rejects.
        return (
            select(
                ServiceSearch.service_id,
                cast(null(), Float()).label("score"),
                ServiceSearch.service_id.label("tiebreak"),
            )
            .where(false())
            .subquery("hits")
        )
    if engine == "postgresql":
        source, where, params = _postgresql_where(criteria)
        score = _postgresql_score(session) if criteria.terms else "NULL::float8"
        stmt = text(
            f"SELECT service_id, {score} AS score, service_id AS tiebreak FROM service_search{source} WHERE {where}"
        ).bindparams(**params)
    else:
        score = f"-bm25(service_fts, {SQLITE_WEIGHTS})" if criteria.terms else "NULL"
        stmt = text(
            f"SELECT s.service_id AS service_id, {score} AS score, s.id AS tiebreak "
            "FROM service_fts JOIN service_search AS s ON s.id = service_fts.rowid WHERE service_fts MATCH :m "
            # LIMIT keeps SQLite from flattening this into an outer aggregate, where bm25() cannot run.
            "LIMIT -1"
        ).bindparams(m=_sqlite_match(criteria))
    return stmt.columns(**columns).subquery("hits")


# Rankers of relevance pages (the SEARCH_RANKER setting, "tantivy" unless set): "tantivy", an
# embedded index that stops early, kept in step with the database by each process
# (core.ranking), or "sql", the database's own index (FTS5 bm25 on SQLite, RUM or ts_rank on
# PostgreSQL). Code run outside an app (scripts, bench/) ranks in the database.
RANKERS = ("sql", "tantivy")
DEFAULT_RANKER = "sql"


def ranker_name() -> str:
    """The SEARCH_RANKER of the running app ("sql" outside an app context)."""
    from flask import current_app, has_app_context

    return current_app.config.get("SEARCH_RANKER", DEFAULT_RANKER) if has_app_context() else DEFAULT_RANKER


def _tantivy(session: Session, criteria: Criteria):
    """This process's Tantivy index when SEARCH_RANKER=tantivy and the criteria have words."""
    if criteria.terms and ranker_name() == "tantivy":
        from flask import current_app

        from core import ranking

        return ranking.ranker(session, current_app.config.get("SEARCH_INDEX_DIR") or None)
    return None


def top_hits(session: Session, criteria: Criteria, limit: int, offset: int) -> list[tuple[uuid.UUID, float]]:
    """The best `limit` (service_id, score) after `offset`, best first, for criteria with search
    words. Only the engine's own index is read to rank and cut the page; the page's rows alone
    are then joined to their service ids. With SEARCH_RANKER=tantivy the page is ranked by this
    process's Tantivy index (core.ranking), caught up with the database first."""
    if criteria.impossible or not criteria.terms:
        raise ValueError("top_hits ranks search words")
    tantivy = _tantivy(session, criteria)
    ranked = tantivy.top(session, criteria.terms, criteria.tag_groups, limit, offset) if tantivy is not None else None
    if ranked is not None:
        return ranked
    if dialect(session) == "postgresql":
        source, where, params = _postgresql_where(criteria)
        if ranks_in_index(session):
            # The RUM index hands the matches over in order of distance (1 / score), ranked from
            # the positions and weights it stores: no table row is read to rank. WITH TIES keeps
            # the whole last tie so that service_id orders ties exactly; with service_id in the
            # index scan's ORDER BY the planner would rank every match from the table instead.
            sql = (
                "SELECT service_id, 1.0 / distance AS score FROM ("
                f"SELECT service_id, document <=> q AS distance FROM service_search{source} WHERE {where} "
                "ORDER BY document <=> q FETCH FIRST (:limit + :offset) ROWS WITH TIES"
                ") AS ranked ORDER BY distance, service_id LIMIT :limit OFFSET :offset"
            )
        else:
            sql = (
                f"SELECT service_id, ts_rank(document, q) AS score FROM service_search{source} WHERE {where} "
                "ORDER BY score DESC, service_id LIMIT :limit OFFSET :offset"
            )
    else:
        params = {"m": _sqlite_match(criteria)}
        sql = (
            "SELECT s.service_id, t.score FROM ("
            f"SELECT rowid AS rid, -bm25(service_fts, {SQLITE_WEIGHTS}) AS score FROM service_fts "
            "WHERE service_fts MATCH :m ORDER BY score DESC, rid LIMIT :limit OFFSET :offset"
            ") AS t JOIN service_search AS s ON s.id = t.rid ORDER BY t.score DESC, t.rid"
        )
    rows = session.execute(
        text(sql).columns(service_id=Uuid(), score=Float()), {**params, "limit": limit, "offset": offset}
    )
    return [(row.service_id, row.score) for row in rows]


def every_ranked_hit(session: Session, criteria: Criteria) -> list[tuple[uuid.UUID, float, None]] | None:
    """Every (service_id, score, None) matching criteria with search words, in the order of the
    pages of `top_hits`, when a ranker other than the database ranks them (SEARCH_RANKER=tantivy);
    None when the database's own order (`hits`) is the pages' order. For a list streamed whole."""
    tantivy = _tantivy(session, criteria) if not criteria.impossible else None
    if tantivy is None:
        return None
    every = tantivy.count(session, criteria.terms, criteria.tag_groups)
    if every is None:  # the index is being built: the database's order, as the pages meanwhile
        return None
    ranked = tantivy.top(session, criteria.terms, criteria.tag_groups, every, 0)
    return None if ranked is None else [(service_id, score, None) for service_id, score in ranked]


def count_hits(session: Session, criteria: Criteria, up_to: int | None = None) -> int:
    """How many services match `criteria`, counted in the index alone; with `up_to`, the
    count stops there (the index stops reading matches). With SEARCH_RANKER=tantivy, a count of
    search words is Tantivy's (exact: it costs about what ranking the page does)."""
    if criteria.impossible:
        return 0
    tantivy = _tantivy(session, criteria)
    found = tantivy.count(session, criteria.terms, criteria.tag_groups) if tantivy is not None else None
    if found is not None:
        return found if up_to is None else min(found, up_to)
    if dialect(session) == "postgresql":
        source, where, params = _postgresql_where(criteria)
        sql = f"SELECT 1 FROM service_search{source} WHERE {where}"
    else:
        sql, params = "SELECT 1 FROM service_fts WHERE service_fts MATCH :m", {"m": _sqlite_match(criteria)}
    if up_to is not None:
        sql, params = sql + " LIMIT :up_to", {**params, "up_to": up_to}
    return session.scalar(text(f"SELECT count(*) FROM ({sql}) AS matches"), params) or 0


def _has_hits(session: Session, word: str) -> bool:
    if dialect(session) == "postgresql":
        sql = "SELECT 1 FROM service_search WHERE document @@ to_tsquery('english'::regconfig, :q) LIMIT 1"
        return session.execute(text(sql), {"q": word}).first() is not None
    sql = "SELECT 1 FROM service_fts WHERE service_fts MATCH :q LIMIT 1"
    return session.execute(text(sql), {"q": f'"{word}"'}).first() is not None


class WordCache:
    """What a look-up answered for a word, per database, while the directory's data version
    stays the same (core.directory_version.seen): a write anywhere moves the version and
    empties it. At most `size` words are kept; past that it starts again empty."""

    def __init__(self, size: int = 20_000) -> None:
        self.size = size
        self._by_engine: weakref.WeakKeyDictionary[Engine, tuple[str, dict]] = weakref.WeakKeyDictionary()

    def words(self, session: Session) -> dict:
        """This database's answers at the version the session sees (a dict to read and fill)."""
        from core.directory_version import seen

        engine = session.get_bind().engine
        tag = seen(session).tag
        found = self._by_engine.get(engine)
        if found is None or found[0] != tag or len(found[1]) >= self.size:
            found = self._by_engine[engine] = (tag, {})
        return found[1]


_corrected = WordCache()


def corrections(session: Session, parsed: ParsedQuery) -> list[str]:
    """Words of the directory close to the query words it does not know ("asthama" -> "asthma"),
    and splits of run-together words ("carseat" -> "car", "seat"). Each word's answer is kept
    until the directory changes (`WordCache`)."""
    unknown = [
        w
        for w in parsed.content_words
        if w not in parsed.protected and w.isalpha() and allowed_typos(w) and len(w) <= 64
    ]
    if not unknown:
        return []
    cache = _corrected.words(session)
    new = [word for word in dict.fromkeys(unknown) if word not in cache]
    if new:
        known = set(session.scalars(select(SearchWord.word).where(SearchWord.word.in_(new))))
        for word in new:
            cache[word] = [] if word in known or _has_hits(session, word) else _correct(session, word)
    return [correction for word in unknown for correction in cache[word]]


def _correct(session: Session, word: str) -> list[str]:
    """The directory's words closest to a word it does not know, or the two known words it runs together."""
    candidates = _typo_candidates(session, word)
    best = min((edit_distance(word, c) for c in candidates), default=None)
    if best is not None and best <= allowed_typos(word):
        return sorted(c for c in candidates if edit_distance(word, c) == best)
    return _split(session, word)


SUGGESTION_CANDIDATES = 5000


def closest_word(session: Session, word: str) -> str | None:
    """The directory's word closest to `word` when the directory does not know `word` and one
    is within one typo more than search forgives (a `did_you_mean` for a search that found
    nothing); None otherwise."""
    if not word.isalpha() or len(word) < 4 or len(word) > 64 or _has_hits(session, word):
        return None
    # The engine's typo candidates, and the known words of about its length that begin with its
    # first letter (both engines alike; read only for a search that found nothing).
    candidates = _typo_candidates(session, word) | set(
        session.scalars(
            select(SearchWord.word)
            .where(SearchWord.word.like(word[0] + "%"))
            .where(func.length(SearchWord.word).between(len(word) - 2, len(word) + 2))
            .limit(SUGGESTION_CANDIDATES)
        )
    )
    scored = sorted((edit_distance(word, c), c) for c in candidates if c != word)
    if scored and scored[0][0] <= allowed_typos(word) + 1:
        return scored[0][1]
    return None


def _typo_candidates(session: Session, word: str) -> set[str]:
    if dialect(session) == "postgresql":
        sql = "SELECT word FROM search_word WHERE word % :w ORDER BY similarity(word, :w) DESC LIMIT 20"
        return set(session.scalars(text(sql), {"w": word}))
    variants = deletions(word) | {word}
    by_variant = select(SearchWordVariant.word).where(SearchWordVariant.variant.in_(variants))
    by_word = select(SearchWord.word).where(SearchWord.word.in_(variants))
    return set(session.scalars(by_variant.union(by_word)))


def _split(session: Session, word: str) -> list[str]:
    """Two known words that run together make `word` ("carseat")."""
    pairs = [(word[:i], word[i:]) for i in range(3, len(word) - 2)]
    parts = {part for pair in pairs for part in pair}
    known = set(session.scalars(select(SearchWord.word).where(SearchWord.word.in_(parts))))
    for left, right in pairs:
        if left in known and right in known:
            return [left, right]
    return []
