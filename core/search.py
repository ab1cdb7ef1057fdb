"""Full-text search over services, on SQLite FTS5 (BM25) or PostgreSQL (weighted tsvector).

Both engines index the same denormalised text (`service_search`), written in the same
transaction as the service, so a change is searchable as soon as the write returns. Field
weights: name > category > program > eligibility and service area > description and
organization. Queries are ORs of plain words (the user's words, synonym expansions and typo
corrections), ranked by the engine, or, for a page ranked by relevance with no row condition,
by each process's Tantivy index (SEARCH_RANKER=tantivy, the default; core.ranking), which is
built from `service_search` and kept in step with it through the `search_change` log.
"""
from __future__ import annotations

import uuid
import weakref
from dataclasses import dataclass, field
from typing import Callable, Iterable, NamedTuple, Sequence

from sqlalchemy import Engine, Float, Integer, Select, Uuid, cast, delete, false, func, insert, literal, null, select, text
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session, selectinload

from core import geo, tags
from core.text import ParsedQuery, allowed_typos, deletions, edit_distance, index_words, normalise, parse  # noqa: F401
from models import (
    Attribute,
    Language,
    Location,
    Organization,
    Program,
    SearchWord,
    SearchWordVariant,
    Service,
    ServiceArea,
    ServiceAreaTown,
    ServiceAtLocation,
    ServicePoint,
    ServiceSearch,
    TaxonomyTerm,
)

# BM25 weights of the FTS5 columns, in table order:
# name, program, category, eligibility, area, description, organization, and the filter tags
# (which never count towards relevance).
SQLITE_WEIGHTS = "10.0, 4.0, 5.0, 3.0, 3.0, 1.0, 1.0, 0.0"


def dialect(session: Session) -> str:
    return session.get_bind().dialect.name


# --------------------------------------------------------------------------- indexing


class AreaText(NamedTuple):
    """What search reads of one service area."""

    id: uuid.UUID
    name: str | None
    description: str | None
    towns: Iterable[str]


def search_fields(
    *,
    name: str,
    alternate_name: str | None,
    description: str | None,
    eligibility_description: str | None,
    program_names: Sequence[str | None],
    organization_names: Sequence[str | None],
    category_names: Sequence[str],
    areas: Iterable[AreaText],
) -> dict[str, str]:
    """The text of each `service_search` column for one service, from plain values.

    The one definition of what search reads of a service: `index_service` and the bulk loader
    (`core.bulk`) both call it, so the two cannot drift. Areas are taken in order of name (then
    id) and their towns alphabetically, sorted here rather than by the database, so the text is
    the same on both engines whatever their collation.
    """
    ordered_areas = sorted(areas, key=lambda area: (area.name or "", area.id))
    return {
        "name_text": _join(name, alternate_name),
        "program_text": _join(*program_names),
        "category_text": _join(*category_names),
        "eligibility_text": _join(eligibility_description),
        "area_text": _join(*(_join(area.name, area.description, *sorted(area.towns)) for area in ordered_areas)),
        "description_text": _join(description),
        "organization_text": _join(*organization_names),
    }


def category_names(term_ids: Iterable[uuid.UUID], term: Callable[[uuid.UUID], TaxonomyTerm | None]) -> list[str]:
    """The names of the categories `term_ids` and of every category above them, each once.

    `term` looks a term up by id (anything with `id`, `name` and `parent_id`): the session for
    one service, a dictionary loaded beforehand for a batch. A service is thereby found by the
    broader categories too ("healthy housing" finds a lead inspection service).
    """
    return [current.name for current in ancestry(term_ids, term)]


def ancestry(term_ids: Iterable[uuid.UUID], term: Callable[[uuid.UUID], TaxonomyTerm | None]) -> list[TaxonomyTerm]:
    """The terms `term_ids` and every term above them, each once, in walking order."""
    found: list[TaxonomyTerm] = []
    seen: set[uuid.UUID] = set()
    for term_id in term_ids:
        current = term(term_id)
        while current is not None and current.id not in seen:
            seen.add(current.id)
            found.append(current)
            current = term(current.parent_id) if current.parent_id else None
    return found


def tag_text(
    *,
    status: str,
    organization_id: uuid.UUID,
    program_id: uuid.UUID | None,
    terms: Iterable[TaxonomyTerm],
    areas: Iterable[tuple[bool, Iterable[str]]],
    language_codes: Iterable[str | None],
) -> str:
    """The `tag_text` column of one service: its filter tags (core/tags.py). `terms` are its
    categories with every category above them (`ancestry`); `areas` are (statewide, towns)."""
    terms, areas = list(terms), [(statewide, list(towns)) for statewide, towns in areas]
    return tags.service_tags(
        status=status,
        organization_id=organization_id,
        program_id=program_id,
        term_ids=[term.id for term in terms],
        taxonomy_ids=[term.taxonomy_id for term in terms if term.taxonomy_id],
        towns=[town for _, towns in areas for town in towns],
        statewide=any(statewide for statewide, _ in areas),
        languages=[code for code in language_codes if code],
    )


def index_service(session: Session, service_id: uuid.UUID) -> None:
    """(Re)write the search row, the words and the points of one service."""
    index_services(session, [service_id])


# Services per batch of `index_services` queries.
SERVICES_PER_INDEX_BATCH = 500


def index_services(session: Session, service_ids: Iterable[uuid.UUID]) -> int:
    """(Re)write the search rows, the words and the points of many services, a few queries per
    batch of 500 whatever their number (ids that name no service are passed over); return how
    many were indexed."""
    ids = list(dict.fromkeys(service_ids))
    done = 0
    for start in range(0, len(ids), SERVICES_PER_INDEX_BATCH):
        done += _index_batch(session, ids[start : start + SERVICES_PER_INDEX_BATCH])
    return done


class _TermRow(NamedTuple):
    id: uuid.UUID
    taxonomy_id: uuid.UUID | None
    name: str
    parent_id: uuid.UUID | None


def _index_batch(session: Session, ids: list[uuid.UUID]) -> int:
    services = session.execute(
        select(
            Service.id, Service.name, Service.alternate_name, Service.description, Service.eligibility_description,
            Service.status, Service.organization_id, Service.program_id,
        ).where(Service.id.in_(ids))
    ).all()
    if not services:
        return 0
    ids = [service.id for service in services]
    organizations = {
        row.id: row
        for row in session.execute(
            select(Organization.id, Organization.name, Organization.alternate_name).where(
                Organization.id.in_({service.organization_id for service in services})
            )
        )
    }
    program_ids = {service.program_id for service in services if service.program_id}
    programs = {
        row.id: row
        for row in session.execute(
            select(Program.id, Program.name, Program.alternate_name).where(Program.id.in_(program_ids))
        )
    } if program_ids else {}
    categories: dict[uuid.UUID, list[uuid.UUID]] = {service_id: [] for service_id in ids}
    for row in session.execute(
        select(Attribute.link_id, Attribute.taxonomy_term_id)
        .where(Attribute.link_entity == "service", Attribute.link_id.in_(ids))
        .order_by(Attribute.id)
    ):
        categories[row.link_id].append(row.taxonomy_term_id)
    terms = _terms_with_ancestors(session, {term_id for found in categories.values() for term_id in found})
    areas: dict[uuid.UUID, list] = {service_id: [] for service_id in ids}
    area_rows = session.execute(
        select(ServiceArea.id, ServiceArea.service_id, ServiceArea.name, ServiceArea.description, ServiceArea.statewide)
        .where(ServiceArea.service_id.in_(ids))
    ).all()
    towns: dict[uuid.UUID, list[str]] = {area.id: [] for area in area_rows}
    if area_rows:
        for row in session.execute(
            select(ServiceAreaTown.service_area_id, ServiceAreaTown.town).where(
                ServiceAreaTown.service_area_id.in_(list(towns))
            )
        ):
            towns[row.service_area_id].append(row.town)
    for area in area_rows:
        areas[area.service_id].append(area)
    languages: dict[uuid.UUID, list[str | None]] = {service_id: [] for service_id in ids}
    for row in session.execute(select(Language.service_id, Language.code).where(Language.service_id.in_(ids))):
        languages[row.service_id].append(row.code)
    places = session.execute(
        select(ServiceAtLocation.service_id, ServiceAtLocation.location_id).where(ServiceAtLocation.service_id.in_(ids))
    ).all()
    locations = {
        location.id: location
        for location in session.scalars(
            select(Location)
            .where(Location.id.in_({place.location_id for place in places}))
            .options(selectinload(Location.addresses))
            # A location may be in the session with addresses loaded before this write changed them.
            .execution_options(populate_existing=True)
        )
    } if places else {}

    search_rows, point_rows, words = [], {}, set()
    for service in services:
        program, organization = programs.get(service.program_id), organizations.get(service.organization_id)
        own_areas = areas[service.id]
        fields = search_fields(
            name=service.name,
            alternate_name=service.alternate_name,
            description=service.description,
            eligibility_description=service.eligibility_description,
            program_names=(program.name, program.alternate_name) if program else (),
            organization_names=(organization.name, organization.alternate_name) if organization else (),
            category_names=category_names(categories[service.id], terms.get),
            areas=[AreaText(area.id, area.name, area.description, towns[area.id]) for area in own_areas],
        )
        fields["tag_text"] = tag_text(
            status=service.status,
            organization_id=service.organization_id,
            program_id=service.program_id,
            terms=ancestry(categories[service.id], terms.get),
            areas=[(area.statewide, towns[area.id]) for area in own_areas],
            language_codes=languages[service.id],
        )
        search_rows.append({"service_id": service.id, **fields})
        words |= index_words(" ".join(fields.values()))
    for place in places:
        point = location_point(locations[place.location_id])
        if point is not None:
            point_rows[(place.service_id, place.location_id)] = {
                "service_id": place.service_id, "location_id": place.location_id,
                "latitude": point[0], "longitude": point[1],
            }
    session.execute(delete(ServiceSearch).where(ServiceSearch.service_id.in_(ids)))
    session.execute(delete(ServicePoint).where(ServicePoint.service_id.in_(ids)))
    # Core inserts (executemany), not the ORM's bulk path.
    session.execute(insert(ServiceSearch.__table__), search_rows)
    if point_rows:
        session.execute(insert(ServicePoint.__table__), list(point_rows.values()))
    remember_words(session, words)
    return len(services)


def _terms_with_ancestors(session: Session, term_ids: set[uuid.UUID]) -> dict[uuid.UUID, _TermRow]:
    """The terms `term_ids` and every term above them, one query per level of the tree."""
    terms: dict[uuid.UUID, _TermRow] = {}
    wanted = set(term_ids)
    while wanted:
        found = [
            _TermRow(*row)
            for row in session.execute(
                select(TaxonomyTerm.id, TaxonomyTerm.taxonomy_id, TaxonomyTerm.name, TaxonomyTerm.parent_id).where(
                    TaxonomyTerm.id.in_(wanted)
                )
            )
        ]
        terms.update((term.id, term) for term in found)
        wanted = {term.parent_id for term in found if term.parent_id and term.parent_id not in terms}
    return terms


def reindex(session: Session, service_ids: Select) -> int:
    """Reindex the services a select of ids names (after a program, organization or term changed)."""
    ids = list(session.scalars(service_ids))
    index_services(session, ids)
    return len(ids)


def _join(*parts: str | None) -> str:
    return " ".join(part for part in parts if part)


# Words per `IN (...)` lookup: well under SQLite's limit on bound parameters.
WORDS_PER_STATEMENT = 500


def _insert_ignoring_duplicates(session: Session, model: type, rows: list[dict]) -> None:
    if not rows:
        return
    insert = postgresql.insert if dialect(session) == "postgresql" else sqlite.insert
    # executemany: one compiled statement whatever the number of rows.
    session.execute(insert(model).on_conflict_do_nothing(), rows)


def remember_words(session: Session, words: set[str]) -> None:
    """Add the words not yet in `search_word` (and, on SQLite, their one-deletion variants)."""
    if not words:
        return
    ordered = sorted(words)
    known: set[str] = set()
    for start in range(0, len(ordered), WORDS_PER_STATEMENT):
        chunk = ordered[start : start + WORDS_PER_STATEMENT]
        known.update(session.scalars(select(SearchWord.word).where(SearchWord.word.in_(chunk))))
    new = [word for word in ordered if word not in known]
    _insert_ignoring_duplicates(session, SearchWord, [{"word": word} for word in new])
    if dialect(session) != "postgresql":  # PostgreSQL finds typos with pg_trgm instead
        _insert_ignoring_duplicates(
            session, SearchWordVariant, [{"variant": v, "word": word} for word in new for v in sorted(deletions(word))]
        )


def location_point(location: Location) -> tuple[float, float] | None:
    """Where a location is: its own coordinates, or the centroid of its Connecticut ZIP code."""
    if location.latitude is not None and location.longitude is not None:
        return location.latitude, location.longitude
    for address in location.addresses:
        place = geo.zip_place(address.postal_code) if address.state_province in (geo.STATE, "Connecticut") else None
        if place is not None:
            return place.latitude, place.longitude
    return None


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
_rum_by_engine: "weakref.WeakKeyDictionary[Engine, bool]" = weakref.WeakKeyDictionary()


def ranks_in_index(session: Session) -> bool:
    """Whether this PostgreSQL database has the RUM ranking index (looked up once per engine;
    without it, matches are ranked with ts_rank over the GIN index's matches)."""
    bind = session.get_bind()
    engine = getattr(bind, "engine", bind)
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
    columns = {"service_id": Uuid(), "score": Float(), "tiebreak": Uuid() if engine == "postgresql" else Integer()}
    if criteria.impossible:
        # A typed NULL: PostgreSQL would read an untyped one as text, which a Float column rejects.
        return select(
            ServiceSearch.service_id, cast(null(), Float()).label("score"), ServiceSearch.service_id.label("tiebreak")
        ).where(false()).subquery("hits")
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


def corrections(session: Session, parsed: ParsedQuery) -> list[str]:
    """Words of the directory close to the query words it does not know ("asthama" -> "asthma"),
    and splits of run-together words ("carseat" -> "car", "seat")."""
    unknown = [
        w
        for w in parsed.content_words
        if w not in parsed.protected and w.isalpha() and allowed_typos(w) and len(w) <= 64
    ]
    if not unknown:
        return []
    known = set(session.scalars(select(SearchWord.word).where(SearchWord.word.in_(unknown))))
    found: list[str] = []
    for word in unknown:
        if word in known or _has_hits(session, word):
            continue
        candidates = _typo_candidates(session, word)
        best = min((edit_distance(word, c) for c in candidates), default=None)
        if best is not None and best <= allowed_typos(word):
            found.extend(sorted(c for c in candidates if edit_distance(word, c) == best))
        else:
            found.extend(_split(session, word))
    return found


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
