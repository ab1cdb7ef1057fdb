"""Full-text search over services, on SQLite FTS5 (BM25) or PostgreSQL (weighted tsvector).

Both engines index the same denormalised text (`service_search`), written in the same
transaction as the service, so a change is searchable as soon as the write returns. Field
weights: name > category > program > eligibility and service area > description and
organization. Queries are ORs of plain words (the user's words, synonym expansions and typo
corrections), ranked by the engine.
"""
from __future__ import annotations

import uuid
from dataclasses import dataclass

from sqlalchemy import Float, Select, Uuid, delete, false, literal, select, text
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session, selectinload

from core import geo
from core.text import ParsedQuery, allowed_typos, deletions, edit_distance, index_words, parse
from models import (
    Attribute,
    Location,
    SearchWord,
    SearchWordVariant,
    Service,
    ServiceArea,
    ServiceAtLocation,
    ServicePoint,
    ServiceSearch,
    TaxonomyTerm,
)

# BM25 weights of the FTS5 columns, in table order:
# name, program, category, eligibility, area, description, organization.
SQLITE_WEIGHTS = "10.0, 4.0, 5.0, 3.0, 3.0, 1.0, 1.0"


def dialect(session: Session) -> str:
    return session.get_bind().dialect.name


# --------------------------------------------------------------------------- indexing


def index_service(session: Session, service_id: uuid.UUID) -> None:
    """(Re)write the search row, the words and the points of one service."""
    service = session.scalar(
        select(Service)
        .where(Service.id == service_id)
        .options(
            selectinload(Service.program),
            selectinload(Service.organization),
            selectinload(Service.attributes).selectinload(Attribute.taxonomy_term),
            selectinload(Service.service_areas).selectinload(ServiceArea.towns),
            selectinload(Service.service_at_locations)
            .selectinload(ServiceAtLocation.location)
            .selectinload(Location.addresses),
        )
        # The service may be in the session with relations loaded before this write changed them.
        .execution_options(populate_existing=True)
    )
    if service is None:
        return
    fields = {
        "name_text": _join(service.name, service.alternate_name),
        "program_text": _join(service.program.name, service.program.alternate_name) if service.program else "",
        "category_text": _join(*_category_names(session, service)),
        "eligibility_text": _join(service.eligibility_description),
        "area_text": _join(*(_area_text(area) for area in service.service_areas)),
        "description_text": _join(service.description),
        "organization_text": _join(service.organization.name, service.organization.alternate_name),
    }
    row = session.scalar(select(ServiceSearch).where(ServiceSearch.service_id == service.id))
    if row is None:
        session.add(ServiceSearch(service_id=service.id, **fields))
    else:
        for key, value in fields.items():
            if getattr(row, key) != value:
                setattr(row, key, value)
    _remember_words(session, index_words(" ".join(fields.values())))
    _write_points(session, service)


def reindex(session: Session, service_ids: Select) -> int:
    """Reindex the services a select of ids names (after a program, organization or term changed)."""
    ids = list(session.scalars(service_ids))
    for service_id in ids:
        index_service(session, service_id)
    return len(ids)


def _join(*parts: str | None) -> str:
    return " ".join(part for part in parts if part)


def _category_names(session: Session, service: Service) -> list[str]:
    """The names of the service's categories and of every category above them."""
    names: list[str] = []
    seen: set[uuid.UUID] = set()
    for attribute in service.attributes:
        term = attribute.taxonomy_term
        while term is not None and term.id not in seen:
            seen.add(term.id)
            names.append(term.name)
            term = session.get(TaxonomyTerm, term.parent_id) if term.parent_id else None
    return names


def _area_text(area: ServiceArea) -> str:
    return _join(area.name, area.description, *(town.town for town in area.towns))


def _insert_ignoring_duplicates(session: Session, model: type, rows: list[dict]) -> None:
    if not rows:
        return
    insert = postgresql.insert if dialect(session) == "postgresql" else sqlite.insert
    session.execute(insert(model).values(rows).on_conflict_do_nothing())


def _remember_words(session: Session, words: set[str]) -> None:
    if not words:
        return
    known = set(session.scalars(select(SearchWord.word).where(SearchWord.word.in_(words))))
    new = sorted(words - known)
    _insert_ignoring_duplicates(session, SearchWord, [{"word": word} for word in new])
    if dialect(session) != "postgresql":  # PostgreSQL finds typos with pg_trgm instead
        variants = [{"variant": v, "word": word} for word in new for v in deletions(word)]
        for start in range(0, len(variants), 500):
            _insert_ignoring_duplicates(session, SearchWordVariant, variants[start : start + 500])


def _write_points(session: Session, service: Service) -> None:
    session.execute(delete(ServicePoint).where(ServicePoint.service_id == service.id))
    for sal in service.service_at_locations:
        point = _location_point(sal.location)
        if point is not None:
            session.add(ServicePoint(service_id=service.id, location_id=sal.location_id, latitude=point[0], longitude=point[1]))


def _location_point(location: Location) -> tuple[float, float] | None:
    if location.latitude is not None and location.longitude is not None:
        return location.latitude, location.longitude
    for address in location.addresses:
        place = geo.zip_place(address.postal_code) if address.state_province in (geo.STATE, "Connecticut") else None
        if place is not None:
            return place.latitude, place.longitude
    return None


# --------------------------------------------------------------------------- matching


@dataclass
class Match:
    """A compiled query. `ranked` scores the matching services (higher `score` is better);
    `ids` selects the same services without scoring them, for counts and facets."""

    terms: list[str]
    ranked: object  # a subquery with columns service_id, score
    ids: Select


def build_match(session: Session, query: str) -> Match:
    parsed = parse(query)
    terms = parsed.terms + corrections(session, parsed)
    terms = list(dict.fromkeys(terms))
    return Match(terms=terms, ranked=_ranked(session, terms), ids=_matching_ids(session, terms))


def _matching_ids(session: Session, terms: list[str]) -> Select:
    if not terms:
        return select(ServiceSearch.service_id).where(false())
    if dialect(session) == "postgresql":
        condition = text("service_search.document @@ to_tsquery('english'::regconfig, :q)").bindparams(q=" | ".join(terms))
        return select(ServiceSearch.service_id).where(condition)
    condition = text(
        "service_search.id IN (SELECT rowid FROM service_fts WHERE service_fts MATCH :q)"
    ).bindparams(q=" OR ".join(f'"{term}"' for term in terms))
    return select(ServiceSearch.service_id).where(condition)


def _ranked(session: Session, terms: list[str]):
    columns = {"service_id": Uuid(), "score": Float()}
    if not terms:
        return select(ServiceSearch.service_id, literal(0.0, Float()).label("score")).where(false()).subquery("ranked")
    if dialect(session) == "postgresql":
        stmt = text(
            "SELECT service_id, ts_rank(document, q) AS score "
            "FROM service_search, to_tsquery('english'::regconfig, :q) AS q WHERE document @@ q"
        ).bindparams(q=" | ".join(terms))
    else:
        stmt = text(
            f"SELECT s.service_id AS service_id, -bm25(service_fts, {SQLITE_WEIGHTS}) AS score "
            "FROM service_fts JOIN service_search AS s ON s.id = service_fts.rowid WHERE service_fts MATCH :q "
            # LIMIT keeps SQLite from flattening this into an outer aggregate, where bm25() cannot run.
            "LIMIT -1"
        ).bindparams(q=" OR ".join(f'"{term}"' for term in terms))
    return stmt.columns(**columns).subquery("ranked")


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
        for w in parsed.words
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
