"""Ranking engines at 50,000 services, measured in process (no HTTP, no wrk).

    .venv/bin/python bench/ranking.py --sqlite-url sqlite:////tmp/bench.db \
        --pg-url postgresql://postgres@127.0.0.1:5432/bench_50000 [--repeat 9] [--tantivy | --rankers]

Databases built by bench/generate.py. For each query of the `selective`, `common` and `phrase`
classes of bench/run.py (a first page of 20 by relevance, no filter but the default status,
so the API answers it from the index alone: core.search.top_hits + count_hits), it works out
the index criteria exactly as the API does (core.directory.plan) and times, as the median of
--repeat runs after one warm-up run, each way of ranking the page and counting the matches:

SQLite
- `bm25`: FTS5 bm25() over every match, ORDER BY score LIMIT 20 (what the API did before);
- `rank`: the same weights through FTS5's own `ORDER BY rank` (`rank MATCH 'bm25(...)'`);
- `tier1`: bm25 over the matches whose name, category or program has a query word only
  (a cheaper, different order; shown for its cost);
- `count`: count(*) of the matches (total_items);
- `bm25_total`: `bm25` with `count(*) OVER ()`: the page and the total from one pass;
- `tantivy` (with --tantivy, needs the `tantivy` package): an in-memory Tantivy index of the
  same columns (BM25 per field with the FTS5 weights as boosts, tags as raw terms), its
  build time, top 20 without counting (block-max WAND) and top 20 with the count.

PostgreSQL
- `ts_rank`: the GIN index finds the matches, ts_rank() reads each one's tsvector from the
  table, ORDER BY score LIMIT 20 (what the API did before);
- `rum`: a RUM index (`rum_tsvector_ops`) on the same tsvector, `ORDER BY document <=> query
  LIMIT 20`: positions and weights are in the index, so ranking reads no table rows (the index
  is created by the migration when the extension is available, else here, timed);
- `ts_rank_total`: `ts_rank` with `count(*) OVER ()`: the page and the total from one pass;
- `count`: count(*) of the matches (total_items), the planner's choice of index;
- `count_gin` / `count_rum`: count(*) of the matches through each index (the other one
  dropped inside a transaction that is rolled back).

With --rankers (either engine, or both), the two settings of SEARCH_RANKER as the API runs
them, through the shipped code: `sql` is core.search.top_hits + count_hits on the database's
index; `tantivy` is core.ranking (the process's Tantivy index: the data version read, the
page, ties ordered by service id, and the exact count). Also the index's build time and the
growth of the process's resident memory while it was built, and how many of the top 20 the
two rankers share.

Also prints how many of RUM's top 20 are in ts_rank's top 20 (and Tantivy's in bm25's).
Writes every figure to bench/out/ranking-<time>.json. Run it on a quiet machine.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import time
import urllib.parse
from datetime import UTC, datetime
from pathlib import Path

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent
VENV_PYTHON = ROOT / ".venv" / "bin" / "python"
if VENV_PYTHON.exists() and Path(sys.prefix).resolve() != (ROOT / ".venv").resolve():
    os.execv(str(VENV_PYTHON), [str(VENV_PYTHON), *sys.argv])
os.environ["BENCH_NO_REEXEC"] = "1"
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(BENCH))

import run as bench_run  # noqa: E402  (the query set)
from sqlalchemy import create_engine, event, text  # noqa: E402
from sqlalchemy.orm import Session  # noqa: E402

from api import prepare_sqlite_connection  # noqa: E402
from api.config import normalise_database_url  # noqa: E402
from core import directory, search  # noqa: E402

CLASSES = ("selective", "common", "phrase")
PAGE = 20


def queries(classes) -> dict[str, list[str]]:
    out = {}
    for cls, urls in bench_run.query_set().items():
        if cls in classes:
            out[cls] = [urllib.parse.parse_qs(urllib.parse.urlparse(u).query)["search"][0] for u in urls]
    return out


def timed(fn, repeat: int) -> tuple[float, object]:
    """Median milliseconds of `repeat` calls after one warm-up call, and the last result."""
    result = fn()
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        result = fn()
        times.append((time.perf_counter() - start) * 1000)
    return statistics.median(times), result


def criteria_for(session: Session, words: str) -> search.Criteria:
    found, conditions = directory.plan(session, directory.ServiceQuery(search=words))
    assert found is not None and not conditions, "a plain search is answered from the index"
    return found


# --------------------------------------------------------------------------- SQLite

SQLITE_TIER1 = "{name_text program_text category_text}"


def sqlite_ways(session: Session, found: search.Criteria) -> dict:
    match = search._sqlite_match(found)
    weights = search.SQLITE_WEIGHTS
    tier1 = match.replace(search.SQLITE_TEXT_COLUMNS, SQLITE_TIER1)
    bm25 = (
        f"SELECT rowid FROM service_fts WHERE service_fts MATCH :m "
        f"ORDER BY bm25(service_fts, {weights}), rowid LIMIT {PAGE}"
    )
    rank = (
        f"SELECT rowid FROM service_fts WHERE service_fts MATCH :m AND rank MATCH 'bm25({weights})' "
        f"ORDER BY rank LIMIT {PAGE}"
    )
    bm25_total = (
        f"SELECT rid, count(*) OVER () FROM (SELECT rowid AS rid, bm25(service_fts, {weights}) AS s "
        f"FROM service_fts WHERE service_fts MATCH :m LIMIT -1) ORDER BY s, rid LIMIT {PAGE}"
    )
    count = "SELECT count(*) FROM service_fts WHERE service_fts MATCH :m"
    return {
        "bm25": lambda: session.scalars(text(bm25), {"m": match}).all(),
        "bm25_total": lambda: session.execute(text(bm25_total), {"m": match}).all(),
        "rank": lambda: session.scalars(text(rank), {"m": match}).all(),
        "tier1": lambda: session.scalars(text(bm25), {"m": tier1}).all(),
        "count": lambda: session.scalar(text(count), {"m": match}),
        "tier1_count": lambda: session.scalar(text(count), {"m": tier1}),
    }


class TantivyIndex:
    """The service_search rows of a SQLite database in an in-memory Tantivy index."""

    FIELDS = search.SQLITE_TEXT_COLUMNS.strip("{}").split()

    def __init__(self, session: Session):
        import tantivy

        self.tantivy = tantivy
        weights = [float(w) for w in search.SQLITE_WEIGHTS.split(",")]
        self.boosts = dict(zip(self.FIELDS, weights, strict=True))
        builder = tantivy.SchemaBuilder()
        for name in self.FIELDS:
            builder.add_text_field(name, stored=False, tokenizer_name="en_stem")
        builder.add_text_field("tag_text", stored=False, tokenizer_name="raw")
        builder.add_integer_field("rid", stored=True, indexed=True, fast=True)
        self.schema = builder.build()
        self.index = tantivy.Index(self.schema)
        start = time.perf_counter()
        writer = self.index.writer(heap_size=200_000_000, num_threads=1)
        columns = ", ".join(self.FIELDS)
        rows = session.execute(text(f"SELECT id, {columns}, tag_text FROM service_search"))
        for row in rows:
            doc = tantivy.Document()
            doc.add_integer("rid", row[0])
            for name, value in zip(self.FIELDS, row[1:], strict=False):  # row[-1] is tag_text, added below
                if value:
                    doc.add_text(name, value)
            for tag in (row[-1] or "").split():
                doc.add_text("tag_text", tag)
            writer.add_document(doc)
        writer.commit()
        writer.wait_merging_threads()
        self.index.reload()
        self.build_ms = (time.perf_counter() - start) * 1000
        self.searcher = self.index.searcher()

    def query(self, found: search.Criteria):
        t = self.tantivy
        words = " ".join(found.terms)
        text_query = self.index.parse_query(words, self.FIELDS, field_boosts=self.boosts)
        parts = [(t.Occur.Must, text_query)]
        for group in found.tag_groups:
            tags = [(t.Occur.Should, t.Query.term_query(self.schema, "tag_text", tag)) for tag in group]
            parts.append((t.Occur.Must, t.Query.boolean_query(tags)))
        return t.Query.boolean_query(parts)

    def ways(self, found: search.Criteria) -> dict:
        query = self.query(found)
        return {
            "tantivy_top": lambda: [self.rid(a) for _, a in self.searcher.search(query, PAGE, count=False).hits],
            "tantivy_top_count": lambda: self.searcher.search(query, PAGE, count=True).count,
        }

    def rid(self, address) -> int:
        return self.searcher.doc(address)["rid"][0]


def measure_sqlite(url: str, classes: dict, repeat: int, with_tantivy: bool) -> dict:
    engine = create_engine(url)
    event.listen(engine, "connect", prepare_sqlite_connection)
    out: dict = {"engine": "sqlite", "version": None, "queries": {}}
    with Session(engine) as session:
        out["version"] = session.scalar(text("SELECT sqlite_version()"))
        index = None
        if with_tantivy:
            index = TantivyIndex(session)
            out["tantivy_build_ms"] = round(index.build_ms)
            print(
                f"sqlite: tantivy index of {session.scalar(text('SELECT count(*) FROM service_search'))} "
                f"rows built in {index.build_ms / 1000:.1f} s",
                flush=True,
            )
        for cls, words_list in classes.items():
            for words in words_list:
                found = criteria_for(session, words)
                ways = sqlite_ways(session, found)
                if index is not None:
                    ways.update(index.ways(found))
                row = {"class": cls, "terms": len(found.terms)}
                results = {}
                for name, fn in ways.items():
                    row[name], results[name] = timed(fn, repeat)
                row["matches"] = results["count"]
                if index is not None:
                    row["tantivy_same_top20"] = len(set(results["bm25"]) & set(results["tantivy_top"]))
                    row["tantivy_count_agrees"] = results["tantivy_top_count"] == results["count"]
                out["queries"][words] = row
                print(f"sqlite {cls:9} {words[:32]:32} " + _fmt(row), flush=True)
    engine.dispose()
    return out


# --------------------------------------------------------------------------- PostgreSQL


def pg_ways(session: Session, found: search.Criteria) -> dict:
    source, where, params = search._postgresql_where(found)
    ts_rank = (
        f"SELECT service_id FROM service_search{source} WHERE {where} "
        f"ORDER BY ts_rank(document, q) DESC, service_id LIMIT {PAGE}"
    )
    ts_rank_total = (
        f"SELECT service_id, count(*) OVER () FROM service_search{source} WHERE {where} "
        f"ORDER BY ts_rank(document, q) DESC, service_id LIMIT {PAGE}"
    )
    rum = (  # as core.search.top_hits asks it: ties at the page's end ordered by service_id
        "SELECT service_id FROM ("
        f"SELECT service_id, document <=> q AS distance FROM service_search{source} WHERE {where} "
        f"ORDER BY document <=> q FETCH FIRST {PAGE} ROWS WITH TIES) AS ranked "
        f"ORDER BY distance, service_id LIMIT {PAGE}"
    )
    count = f"SELECT count(*) FROM service_search{source} WHERE {where}"
    return {
        "ts_rank": (ts_rank, params, lambda: session.scalars(text(ts_rank), params).all()),
        "ts_rank_total": (ts_rank_total, params, lambda: session.execute(text(ts_rank_total), params).all()),
        "rum": (rum, params, lambda: session.scalars(text(rum), params).all()),
        "count": (count, params, lambda: session.scalar(text(count), params)),
    }


RUM_INDEX = "ix_service_search_document_rum"
GIN_INDEX = "ix_service_search_document"


def ensure_rum(session: Session) -> float | None:
    """Create the RUM index unless the migration did; milliseconds it took, or None."""
    if session.scalar(text("SELECT 1 FROM pg_indexes WHERE indexname = :n"), {"n": RUM_INDEX}):
        return None
    session.execute(text("CREATE EXTENSION IF NOT EXISTS rum"))
    start = time.perf_counter()
    session.execute(text(f"CREATE INDEX {RUM_INDEX} ON service_search USING rum (document rum_tsvector_ops)"))
    session.commit()
    session.execute(text("ANALYZE service_search"))
    session.commit()
    return (time.perf_counter() - start) * 1000


def explain(session: Session, sql: str, params: dict) -> str:
    rows = session.execute(text(f"EXPLAIN (ANALYZE, BUFFERS, TIMING OFF) {sql}"), params)
    return "\n".join(r[0] for r in rows)


def measure_postgresql(url: str, classes: dict, repeat: int) -> dict:
    engine = create_engine(normalise_database_url(url))
    out: dict = {"engine": "postgresql", "queries": {}, "explain": {}}
    with Session(engine) as session:
        out["version"] = session.scalar(text("SHOW server_version"))
        built = ensure_rum(session)
        if built is not None:
            out["rum_build_ms"] = round(built)
            print(f"postgresql: RUM index built in {built / 1000:.1f} s", flush=True)
        sizes = session.execute(
            text("SELECT indexname, pg_relation_size(indexname::regclass) FROM pg_indexes WHERE indexname IN (:g, :r)"),
            {"g": GIN_INDEX, "r": RUM_INDEX},
        ).all()
        out["index_bytes"] = {name: size for name, size in sizes}
        for cls, words_list in classes.items():
            for i, words in enumerate(words_list):
                found = criteria_for(session, words)
                ways = pg_ways(session, found)
                row = {"class": cls, "terms": len(found.terms)}
                results = {}
                for name, (_, _, fn) in ways.items():
                    row[name], results[name] = timed(fn, repeat)
                row["matches"] = results["count"]
                row["rum_same_top20"] = len(set(results["ts_rank"]) & set(results["rum"]))
                # the count through each index alone: drop the other one in a transaction, roll back
                for name, drop in (("count_gin", RUM_INDEX), ("count_rum", GIN_INDEX)):
                    session.execute(text(f"DROP INDEX {drop}"))
                    row[name], _ = timed(ways["count"][2], repeat)
                    if i == 0:
                        out["explain"][f"{cls}: {words}: {name}"] = explain(session, *ways["count"][:2])
                    session.rollback()
                if i == 0:
                    for name in ("ts_rank", "ts_rank_total", "rum"):
                        out["explain"][f"{cls}: {words}: {name}"] = explain(session, *ways[name][:2])
                out["queries"][words] = row
                print(f"postgresql {cls:9} {words[:32]:32} " + _fmt(row), flush=True)
    engine.dispose()
    return out


# --------------------------------------------------------------------------- SEARCH_RANKER


def _rss_mib() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


def measure_rankers(url: str, classes: dict, repeat: int) -> dict:
    """SEARCH_RANKER=sql against SEARCH_RANKER=tantivy, as core.search dispatches them."""
    from core import ranking

    engine = create_engine(url)
    if engine.dialect.name == "sqlite":
        event.listen(engine, "connect", prepare_sqlite_connection)
    out: dict = {"engine": f"{engine.dialect.name} rankers", "queries": {}}
    with Session(engine) as session:
        tantivy = ranking.TantivyRanker()
        before = _rss_mib()
        state = tantivy.ready(session)
        out["tantivy_build_s"] = round(state.build_seconds, 2)
        out["tantivy_documents"] = state.documents
        out["tantivy_rss_growth_mib"] = round(_rss_mib() - before, 1)
        print(
            f"{engine.dialect.name}: tantivy index of {state.documents} services built in "
            f"{state.build_seconds:.1f} s, resident memory +{out['tantivy_rss_growth_mib']} MiB",
            flush=True,
        )
        for cls, words_list in classes.items():
            for words in words_list:
                found = criteria_for(session, words)
                ways = {
                    "sql_page": lambda found=found: search.top_hits(session, found, PAGE, 0),
                    "sql_count": lambda found=found: search.count_hits(session, found),
                    "tantivy_page": lambda found=found: tantivy.top(session, found.terms, found.tag_groups, PAGE, 0),
                    "tantivy_count": lambda found=found: tantivy.count(session, found.terms, found.tag_groups),
                }
                row = {"class": cls, "terms": len(found.terms)}
                results = {}
                for name, fn in ways.items():
                    row[name], results[name] = timed(fn, repeat)
                row["sql_page_count"] = row["sql_page"] + row["sql_count"]
                row["tantivy_page_count"] = row["tantivy_page"] + row["tantivy_count"]
                row["matches"] = results["sql_count"]
                row["count_agrees"] = results["tantivy_count"] == results["sql_count"]
                row["same_top20"] = len({i for i, _ in results["sql_page"]} & {i for i, _ in results["tantivy_page"]})
                out["queries"][words] = row
                print(f"{engine.dialect.name} {cls:9} {words[:32]:32} " + _fmt(row), flush=True)
    engine.dispose()
    return out


# --------------------------------------------------------------------------- report


def _fmt(row: dict) -> str:
    return " ".join(f"{k}={v:.1f}" if isinstance(v, float) else f"{k}={v}" for k, v in row.items() if k != "class")


def summary(result: dict) -> list[str]:
    """Per class: median over its queries of each way's median, and the worst query."""
    lines = []
    by_class: dict[str, list[dict]] = {}
    for row in result["queries"].values():
        by_class.setdefault(row["class"], []).append(row)
    for cls, rows in by_class.items():
        ways = [k for k, v in rows[0].items() if isinstance(v, float)]
        cells = [
            f"{way} {statistics.median(r[way] for r in rows):.1f} / {max(r[way] for r in rows):.1f}" for way in ways
        ]
        lines.append(f"{result['engine']} {cls}: " + "; ".join(cells) + " (ms, median / worst query)")
    return lines


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sqlite-url", help="SQLAlchemy URL of a database built by generate.py")
    parser.add_argument("--pg-url", help="PostgreSQL URL of a database built by generate.py")
    parser.add_argument("--repeat", type=int, default=9, help="timed runs per query and way (default 9)")
    parser.add_argument("--classes", default=",".join(CLASSES), help="query classes (default: %(default)s)")
    parser.add_argument("--tantivy", action="store_true", help="also measure a Tantivy index (pip install tantivy)")
    parser.add_argument(
        "--rankers",
        action="store_true",
        help="measure SEARCH_RANKER=sql against SEARCH_RANKER=tantivy (core.ranking) instead",
    )
    args = parser.parse_args(argv)
    classes = queries(args.classes.split(","))
    run = {
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": f"{os.cpu_count()} cores; {platform.platform()}; Python {platform.python_version()}",
        "loadavg_before": os.getloadavg()[0],
        "repeat": args.repeat,
        "results": [],
    }
    if args.rankers:
        for url in (args.sqlite_url, args.pg_url):
            if url:
                run["results"].append(measure_rankers(url, classes, args.repeat))
    else:
        if args.sqlite_url:
            run["results"].append(measure_sqlite(args.sqlite_url, classes, args.repeat, args.tantivy))
        if args.pg_url:
            run["results"].append(measure_postgresql(args.pg_url, classes, args.repeat))
    run["loadavg_after"] = os.getloadavg()[0]
    print()
    for result in run["results"]:
        print("\n".join(summary(result)))
    out = BENCH / "out" / f"ranking-{run['date'].replace(':', '').replace('+0000', 'Z')}.json"
    out.parent.mkdir(exist_ok=True)
    out.write_text(json.dumps(run, indent=2) + "\n")
    print(f"\nload average before / after: {run['loadavg_before']:.2f} / {run['loadavg_after']:.2f}; raw: {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
