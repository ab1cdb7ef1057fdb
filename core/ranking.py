"""Relevance ranking in an embedded Tantivy index that stops early (SEARCH_RANKER=tantivy).

FTS5's bm25() and PostgreSQL's RUM/ts_rank score every match of a query before they hand over
the first row, so a page of a common word costs in proportion to the directory. Tantivy ranks
with block-max WAND: it skips the postings that cannot reach the page. This module keeps one
Tantivy index per process and per database (in memory) and answers the relevance-ranked pages
(`core.search.top_hits`) and their counts (`core.search.count_hits`) from it; every other read
(filters alone, facets, name or distance order, rows conditions such as age or radius) still
reads the database's own full-text index.

**The database stays the source of truth.** The index holds what `service_search` holds, and
nothing else:

- a fresh process builds it from `service_search` at its first search (about 3 s per 50,000
  services);
- every change of a `service_search` row is logged in `search_change` (a trigger, migration
  0014, in the same transaction as the change), with an increasing `seq`;
- before it answers a search, the process reads the directory's data version
  (core.directory_version, one primary-key read); when it has moved, it reads the changes after
  the last `seq` it applied, deletes those services' documents, adds their current rows, and
  reloads its searcher. A write is therefore searchable as soon as it returns, in every worker
  and every instance;
- `flask search reindex` rewrites every search row and logs a rebuild marker (a change with no
  service id): every process rebuilds its index at its next search.

A `seq` is drawn when a change is written, not when it commits: on PostgreSQL a transaction may
commit after a later `seq` was already read. A `seq` missing between two that were read is
therefore kept as a gap and looked for again at each catch-up for `GAP_SECONDS` (a rolled-back
transaction leaves a gap for good).

**Matching and scores.** Documents hold the seven text fields of `service_search`, normalised
as queries are (core.text.normalise: lower case, accents folded) and stemmed with the stemmer
of the database's own index (Porter, as FTS5's `porter` tokenizer, on SQLite; Snowball English,
as PostgreSQL's `english` configuration, on PostgreSQL), so a query term matches the services
the database's index matches. Tantivy scores BM25 per field; a term's score in a field is
multiplied by the field's FTS5 weight (`core.search.SQLITE_WEIGHTS`: name 10, category 5,
program 4, eligibility and area 3, description and organization 1), and a service's score is
the sum over terms and fields. Filter tags (`tag_text`) are raw terms in a required clause that
scores nothing. Ties are broken by service id, as on PostgreSQL.
"""

from __future__ import annotations

import ctypes
import logging
import os
import shutil
import threading
import time
import uuid
import weakref
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING

import snowballstemmer
from sqlalchemy import Engine, func, select
from sqlalchemy.orm import Session

from core import directory_version
from core.text import normalise
from models import SearchChange, ServiceSearch

if TYPE_CHECKING:  # for annotations only: loaded when first used (see _tantivy)
    import tantivy

log = logging.getLogger(__name__)

# The text fields and their weights, as FTS5's bm25() weighs them (core.search.SQLITE_WEIGHTS).
FIELD_WEIGHTS = {
    "name_text": 10.0,
    "program_text": 4.0,
    "category_text": 5.0,
    "eligibility_text": 3.0,
    "area_text": 3.0,
    "description_text": 1.0,
    "organization_text": 1.0,
}
# Stemmer of the database's own full-text index, by SQL dialect.
STEMMERS = {"sqlite": "porter", "postgresql": "english"}
# How long a missing change number is looked for again (see the module's docstring).
GAP_SECONDS = 120.0
# Directories of more services than this are indexed in a background thread (a first search
# meanwhile is ranked by the database); smaller ones at the first search (about 4 s per 50,000).
INLINE_BUILD_LIMIT = 100_000
# At most this many missing change numbers are looked for again at a time.
MAX_GAPS = 10_000
# Past this many changed services in one catch-up (and a tenth of the index), rebuild instead.
REBUILD_AFTER = 20_000
# Services read from the database per batch when the index is built or caught up.
BATCH = 2_000
# Writer memory (bytes) of one indexing thread: while the index is built, and the writer kept
# for catching up (Tantivy's least).
BUILD_HEAP = 64_000_000
WRITER_HEAP = 15_000_000
# At most this many results beyond the page are read to order a tie at its end by service id.
TIE_WINDOW = 1_000
# The reads before it, past the page: a short tie costs a short read.
TIE_STEPS = (50,)
# Match counts kept per searcher (see _State.counts).
COUNTS_KEPT = 1_000


def _tantivy():
    import tantivy  # imported when first used: SEARCH_RANKER=sql never loads it

    return tantivy


class _Stemmer:
    """A Snowball stemmer with a cache (the directory's vocabulary is small) and a lock (a
    Snowball stemmer keeps state while it stems)."""

    def __init__(self, algorithm: str) -> None:
        self._stemmer = snowballstemmer.stemmer(algorithm)
        self._lock = threading.Lock()
        self.stem = lru_cache(maxsize=200_000)(self._stem)

    def _stem(self, word: str) -> str:
        with self._lock:
            return self._stemmer.stemWord(word)

    def text(self, value: str | None) -> str:
        return " ".join(self.stem(word) for word in normalise(value or ""))


@lru_cache(maxsize=4)
def stemmer(dialect: str) -> _Stemmer:
    return _Stemmer(STEMMERS.get(dialect, "porter"))


def _release_memory() -> None:
    """Hand the heap a build leaves free back to the system (glibc keeps it otherwise: about
    70 MiB after a million services), so that a worker's resident memory is what it holds."""
    try:
        ctypes.CDLL("libc.so.6").malloc_trim(0)
    except (OSError, AttributeError):  # not glibc: nothing to trim
        pass


def schema():
    tantivy = _tantivy()
    builder = tantivy.SchemaBuilder()
    builder.add_text_field("service_id", stored=True, tokenizer_name="raw", index_option="basic")
    for name in FIELD_WEIGHTS:
        # Pre-normalised, pre-stemmed words; no positions (no phrase queries).
        builder.add_text_field(name, stored=False, tokenizer_name="whitespace", index_option="freq")
    builder.add_text_field("tag_text", stored=False, tokenizer_name="raw", index_option="basic")
    return builder.build()


_COLUMNS = [ServiceSearch.service_id, *(getattr(ServiceSearch, name) for name in FIELD_WEIGHTS), ServiceSearch.tag_text]


@dataclass
class _State:
    index: tantivy.Index
    writer: tantivy.IndexWriter
    searcher: tantivy.Searcher
    stemmer: _Stemmer
    documents: int
    version: str | None = None
    last_seq: int = 0
    gaps: dict[int, float] = field(default_factory=dict)  # seq -> when first missed
    built_at: float = 0.0
    build_seconds: float = 0.0
    path: Path | None = None  # the index's folder (SEARCH_INDEX_DIR), None in memory
    # Match counts read with this searcher, by query (a page's first read counts its matches
    # too, and the page's total is then not read again); emptied when the searcher changes.
    counts: dict[tuple, int] = field(default_factory=dict)


class TantivyRanker:
    """The Tantivy index of one database in this process (see the module's docstring)."""

    def __init__(self, directory: str | os.PathLike | None = None) -> None:
        """`directory`: where to keep the index's files (a folder per process, under it);
        None keeps the index in memory."""
        self._lock = threading.RLock()
        self._state: _State | None = None
        self._schema = None
        self.directory = Path(directory) if directory else None
        self._building = False

    # ------------------------------------------------------------------ keeping in step

    def ready(self, session: Session) -> _State | None:
        """The index, caught up with the database as `session` sees it: built at the first
        call, then brought up to date whenever the data version has moved. None while a
        directory of more than INLINE_BUILD_LIMIT services is being indexed in the background
        (the caller ranks in the database meanwhile: a first search never waits for a build
        that would outlast a worker's timeout)."""
        with self._lock:
            version = directory_version.seen(session).tag
            state = self._state
            if state is None:
                if self._building:
                    return None
                if (session.scalar(select(func.count()).select_from(ServiceSearch)) or 0) > INLINE_BUILD_LIMIT:
                    self._build_in_background(session)
                    return None
                state = self._build(session)
            elif state.version != version:
                if not self._catch_up(session, state):
                    if state.documents > INLINE_BUILD_LIMIT:
                        self._replace(None)
                        self._build_in_background(session)
                        return None
                    state = self._build(session)
            state.version = version
            self._replace(state)
            return state

    def _build_in_background(self, session: Session) -> None:
        bind = session.get_bind()
        engine = getattr(bind, "engine", bind)
        self._building = True

        def build() -> None:
            try:
                with Session(engine) as own:
                    built = self._build(own)
                with self._lock:
                    built.version = None  # caught up at the next search
                    self._replace(built)
            except Exception:  # the next search tries again; the database ranks meanwhile
                log.exception("building the Tantivy index failed")
            finally:
                self._building = False

        threading.Thread(target=build, name="tantivy-build", daemon=True).start()

    def rebuild(self, session: Session) -> _State:
        """Build the index again from the database (what a rebuild marker asks)."""
        with self._lock:
            version = directory_version.seen(session).tag
            state = self._build(session)
            state.version = version
            self._replace(state)
            return state

    def _replace(self, state: _State | None) -> None:
        old, self._state = self._state, state
        if old is not None and old.path is not None and (state is None or old.path != state.path):
            shutil.rmtree(old.path, ignore_errors=True)

    def _new_folder(self) -> Path | None:
        """A new folder of this process under `directory`; folders of processes that are gone
        are removed."""
        if self.directory is None:
            return None
        self.directory.mkdir(parents=True, exist_ok=True)
        for folder in self.directory.glob("tantivy-*"):
            try:
                pid = int(folder.name.split("-")[1])
                os.kill(pid, 0)
            except (ValueError, IndexError):
                continue
            except ProcessLookupError:
                shutil.rmtree(folder, ignore_errors=True)
            except PermissionError:
                pass
        folder = self.directory / f"tantivy-{os.getpid()}-{uuid.uuid4().hex[:8]}"
        folder.mkdir()
        return folder

    def _build(self, session: Session) -> _State:
        tantivy = _tantivy()
        started = time.perf_counter()
        if self._schema is None:
            self._schema = schema()
        words = stemmer(session.get_bind().dialect.name)
        # The last change first: rows read after it are at least as new (a change logged after
        # it is applied again at the next catch-up, which is harmless).
        last_seq = session.scalar(select(func.max(SearchChange.seq))) or 0
        path = self._new_folder()
        index = tantivy.Index(self._schema, path=str(path)) if path else tantivy.Index(self._schema)
        writer = index.writer(heap_size=BUILD_HEAP, num_threads=1)
        documents = 0
        rows = session.execute(select(*_COLUMNS).execution_options(yield_per=BATCH))
        for row in rows:
            writer.add_document(self._document(row, words))
            documents += 1
        writer.commit()
        writer.wait_merging_threads()
        del writer, rows
        _release_memory()
        writer = index.writer(heap_size=WRITER_HEAP, num_threads=1)
        index.reload()
        state = _State(
            index=index,
            writer=writer,
            searcher=index.searcher(),
            stemmer=words,
            documents=documents,
            last_seq=last_seq,
            built_at=time.monotonic(),
            path=path,
        )
        # Changes below last_seq not yet committed when it was read: look for them as gaps.
        window = set(range(max(1, last_seq - 255), last_seq + 1))
        if window:
            seen = set(session.scalars(select(SearchChange.seq).where(SearchChange.seq >= min(window))))
            oldest = min(seen, default=last_seq)  # below it the log may have been pruned
            now = time.monotonic()
            state.gaps = {seq: now for seq in window - seen if seq > oldest}
        state.build_seconds = time.perf_counter() - started
        log.info(
            "ranking index of %d services built in %.1f s (process %d)", documents, state.build_seconds, os.getpid()
        )
        return state

    def _catch_up(self, session: Session, state: _State) -> bool:
        """Apply the changes logged since the last one applied; False when the index must be
        rebuilt instead (a rebuild marker, too many changes, or a log that went back). The log
        is only pruned behind a rebuild marker (`request_rebuild`), which every process reads
        as "rebuild"."""
        now = time.monotonic()
        state.gaps = {seq: since for seq, since in state.gaps.items() if now - since < GAP_SECONDS}
        floor = min([state.last_seq, *(seq - 1 for seq in state.gaps)])
        changes = session.execute(
            select(SearchChange.seq, SearchChange.service_id).where(SearchChange.seq > floor).order_by(SearchChange.seq)
        ).all()
        if self._log_went_back(session, state, changes):
            return False  # a database restored or made again: rebuild
        wanted = [c for c in changes if c.seq > state.last_seq or c.seq in state.gaps]
        if any(c.service_id is None for c in wanted):
            return False
        self._advance(state, changes, now)
        ids = list(dict.fromkeys(c.service_id for c in wanted))
        if not ids:
            return True
        if len(ids) > REBUILD_AFTER and len(ids) > state.documents // 10:
            return False
        self._reindex(session, state, ids)
        return True

    @staticmethod
    def _log_went_back(session: Session, state: _State, changes) -> bool:
        """Whether the newest change logged is older than the last one this index applied."""
        if changes and changes[-1].seq >= state.last_seq:
            return False
        newest = session.scalar(select(func.max(SearchChange.seq)))
        return (newest or 0) < state.last_seq

    @staticmethod
    def _advance(state: _State, changes, now: float) -> None:
        """Move `last_seq` to the newest change read; the sequence numbers skipped below it are
        gaps, looked for again until GAP_SECONDS (on PostgreSQL a sequence number can commit
        after a greater one)."""
        for change in changes:
            state.gaps.pop(change.seq, None)
        if not changes or changes[-1].seq <= state.last_seq:
            return
        top = changes[-1].seq
        seen = {c.seq for c in changes}
        missing = [seq for seq in range(state.last_seq + 1, top) if seq not in seen]
        if len(missing) <= MAX_GAPS:  # more: a large rolled-back load, not commits to wait for
            state.gaps.update((seq, now) for seq in missing)
        state.last_seq = top

    def _reindex(self, session: Session, state: _State, ids: list) -> None:
        """Replace these services' documents with their current search rows (a service with no
        row any more is only deleted), then reload the searcher."""
        for start in range(0, len(ids), BATCH):
            chunk = ids[start : start + BATCH]
            for service_id in chunk:
                state.writer.delete_documents_by_term("service_id", str(service_id))
            for row in session.execute(select(*_COLUMNS).where(ServiceSearch.service_id.in_(chunk))):
                state.writer.add_document(self._document(row, state.stemmer))
        state.writer.commit()
        state.index.reload()
        state.searcher = state.index.searcher()
        state.counts.clear()
        state.documents = state.searcher.num_docs

    def _document(self, row, words: _Stemmer):
        document = _tantivy().Document()
        document.add_text("service_id", str(row[0]))
        for name, value in zip(FIELD_WEIGHTS, row[1:-1], strict=True):
            if value:
                document.add_text(name, words.text(value))
        for tag in (row[-1] or "").split():
            document.add_text("tag_text", tag)
        return document

    # ------------------------------------------------------------------ answering

    def query(self, state: _State, terms: list[str], tag_groups: list[list[str]]):
        """Any of the (stemmed) terms in any text field, weighted by field; every tag group."""
        tantivy = _tantivy()
        Query, Occur = tantivy.Query, tantivy.Occur
        stems = list(dict.fromkeys(state.stemmer.stem(word) for term in terms for word in normalise(term)))
        words = [
            (Occur.Should, Query.boost_query(Query.term_query(self._schema, name, stem), weight))
            for stem in stems
            for name, weight in FIELD_WEIGHTS.items()
        ]
        text_query = Query.boolean_query(words) if words else Query.empty_query()
        if not tag_groups:
            return text_query
        parts = [(Occur.Must, text_query)]
        for group in tag_groups:
            tags = Query.boolean_query(
                [(Occur.Should, Query.term_query(self._schema, "tag_text", tag)) for tag in group]
            )
            parts.append((Occur.Must, Query.const_score_query(tags, 0.0)))
        return Query.boolean_query(parts)

    def top(self, session: Session, terms: list[str], tag_groups: list[list[str]], limit: int, offset: int):
        """The best `limit` (service_id, score) after `offset`, best first, ties by service id;
        None while the index is being built (see `ready`)."""
        state = self.ready(session)
        if state is None:
            return None
        searcher, query = state.searcher, self.query(state, terms, tag_groups)
        wanted = limit + offset
        if wanted <= 0:
            return []
        # Read one result past the page, counting the matches too (the page's total is asked
        # next; counting apart would walk them again). While the page's last score ties with the
        # last result read, read further (TIE_STEPS, then TIE_WINDOW past the page), so that a
        # tie is ordered whole.
        first = searcher.search(query, wanted + 1, count=True)
        self._remember_count(state, terms, tag_groups, first.count)  # type: ignore[attr-defined]
        hits = first.hits
        for extra in (*TIE_STEPS, TIE_WINDOW):
            if len(hits) <= wanted or hits[-1][0] != hits[wanted - 1][0]:
                break
            hits = searcher.search(query, wanted + extra, count=False).hits
        last = hits[wanted - 1][0] if len(hits) >= wanted else None
        hits = [hit for hit in hits if last is None or hit[0] >= last]  # only the page and its tie
        scored = [(score, uuid.UUID(searcher.doc(address)["service_id"][0])) for score, address in hits]
        scored.sort(key=lambda pair: (-pair[0], pair[1]))
        return [(service_id, score) for score, service_id in scored[offset:wanted]]

    def count(self, session: Session, terms: list[str], tag_groups: list[list[str]]) -> int | None:
        """How many services match, exactly; None while the index is being built."""
        state = self.ready(session)
        if state is None:
            return None
        known = state.counts.get(_count_key(terms, tag_groups))
        if known is not None:
            return known
        result = state.searcher.search(self.query(state, terms, tag_groups), 1, count=True)
        # tantivy 0.27's stub leaves out SearchResult.count (the extension module has it).
        return self._remember_count(state, terms, tag_groups, result.count)  # type: ignore[attr-defined]

    @staticmethod
    def _remember_count(state: _State, terms: list[str], tag_groups: list[list[str]], count: int) -> int:
        if len(state.counts) >= COUNTS_KEPT:
            state.counts.clear()
        state.counts[_count_key(terms, tag_groups)] = count
        return count


def _count_key(terms: list[str], tag_groups: list[list[str]]) -> tuple:
    return tuple(terms), tuple(tuple(group) for group in tag_groups)


_rankers: weakref.WeakKeyDictionary[Engine, TantivyRanker] = weakref.WeakKeyDictionary()
_rankers_lock = threading.Lock()


def ranker(session: Session, directory: str | None = None) -> TantivyRanker:
    """This process's Tantivy index of the session's database (one per SQLAlchemy engine),
    kept under `directory` (SEARCH_INDEX_DIR) or in memory."""
    engine = session.get_bind().engine  # an Engine's .engine is itself, a Connection's its engine
    with _rankers_lock:
        found = _rankers.get(engine)
        if found is None:
            found = _rankers[engine] = TantivyRanker(directory)
        return found


def request_rebuild(session: Session) -> int:
    """Log a rebuild marker in the session's transaction (every process rebuilds its index at
    its next search) and prune the log before it; return the marker's seq."""
    from sqlalchemy import delete, insert

    from core.directory_version import bump

    seq = session.execute(insert(SearchChange).values(service_id=None).returning(SearchChange.seq)).scalar_one()
    session.execute(delete(SearchChange).where(SearchChange.seq < seq))
    bump(session)
    return seq
