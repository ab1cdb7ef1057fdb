"""The search page against the API for the same queries (issue 14: the page should cost at
most 1.5x the API).

Serves the seeded directory with gunicorn as `make serve` does (result cache off, rate limits
off, as bench/run.py), and drives it with wrk (bench/rotate.lua) from a second process: first
`/app/search?q=...` (the HTML page: the same core query with full records and four facets, and
the template), then `/services?search=...&full=true&facets=...&per_page=10` (the JSON the page
is made from). Writes the section "Web search page vs the API" of bench/RESULTS.md.

    .venv/bin/python bench/web.py --engine both --duration 10
"""

from __future__ import annotations

import argparse
import os
import re
import subprocess
import sys
import time
import urllib.parse
import urllib.request
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import run  # noqa: E402  (bench/run.py: gunicorn, wrk, the machine description)

QUERIES = [
    "my toddler isn't talking",
    "asthma",
    "lead paint in my apartment",
    "car seat",
    "legal help with housing",
    "care coordination",
    "speech delay",
    "injury prevention",
]
FACETS = "category,town,language,program"
TARGET_RATIO = 1.5
SECTION = "## Web search page vs the API"


def page_paths() -> list[str]:
    return ["/app/search?" + urllib.parse.urlencode({"q": q}) for q in QUERIES]


def api_paths() -> list[str]:
    return [
        "/services?"
        + urllib.parse.urlencode(
            [("search", q), ("full", "true"), *(("facets", f) for f in FACETS.split(",")), ("per_page", 10)]
        )
        for q in QUERIES
    ]


def seeded_database(engine: str) -> str:
    run.OUT.mkdir(exist_ok=True)
    if engine == "sqlite":
        path = run.OUT / "web_seed.db"
        path.unlink(missing_ok=True)
        url = f"sqlite:///{path}"
    else:
        import psycopg

        base = os.environ.get("BENCH_PG_URL", "postgresql://postgres@127.0.0.1:5432/postgres")
        with psycopg.connect(base, autocommit=True) as conn:
            conn.execute('DROP DATABASE IF EXISTS "bench_web" WITH (FORCE)')
            conn.execute('CREATE DATABASE "bench_web"')
        url = base.rsplit("/", 1)[0] + "/bench_web"
    # The server reads the database with the test suite's key (run.Server): seed it with the same.
    env = {**os.environ, "DATABASE_URL": url, "FLASK_APP": "wsgi", "DATA_ENCRYPTION_KEY": run.TEST_DATA_ENCRYPTION_KEY}
    flask = str(run.ROOT / ".venv" / "bin" / "flask")
    for command in (["db", "upgrade"], ["seed"]):
        subprocess.run([flask, *command], cwd=run.ROOT, env=env, check=True, capture_output=True)
    return url


def check(base: str, paths: list[str]) -> None:
    for path in paths:
        with urllib.request.urlopen(base + path, timeout=60) as response:
            if response.status != 200:
                sys.exit(f"bench/web.py: {path} answered {response.status}")


def bench(engine: str, args) -> dict:
    url = seeded_database(engine)
    log = run.OUT / f"web_{engine}.log"
    server = run.Server(url, args.workers, log)
    try:
        server.wait_ready()
        results = {}
        for name, paths in (("page", page_paths()), ("api", api_paths())):
            check(server.base, paths)
            run.run_wrk(server.base, paths, max(1, args.duration // 2), args.connections, args.threads)  # warm-up
            results[name] = run.run_wrk(server.base, paths, args.duration, args.connections, args.threads)
    finally:
        server.stop()
    results["cost_ratio"] = round(results["api"]["rps"] / results["page"]["rps"], 2) if results["page"]["rps"] else None
    return results


def write_results(runs: dict, args) -> None:
    info = run.machine()
    lines = [
        SECTION,
        "",
        f"{run.now_iso()}, `bench/web.py --duration {args.duration} --connections {args.connections}`: the seeded "
        f"directory, gunicorn with {args.workers} sync workers, result cache and rate limits off, on {info.get('cpu')} "
        f"({info.get('nproc')} cores; 1-minute load average {os.getloadavg()[0]:.2f} at the end). "
        f"{len(QUERIES)} parent-style queries, rotated; the page "
        "renders 10 full records with four facets, the API answers the same query as JSON.",
        "",
        "| engine | page req/s | page p99 ms | API req/s | API p99 ms | page cost / API cost | target |",
        "| --- | --- | --- | --- | --- | --- | --- |",
    ]
    for engine, r in runs.items():
        verdict = "met" if r["cost_ratio"] is not None and r["cost_ratio"] <= TARGET_RATIO else "NOT met"
        lines.append(
            f"| {engine} | {r['page']['rps']} | {r['page']['p99_ms']} | {r['api']['rps']} | {r['api']['p99_ms']} | "
            f"{r['cost_ratio']}x | <= {TARGET_RATIO}x: {verdict} |"
        )
    lines.append("")
    text = run.RESULTS.read_text() if run.RESULTS.exists() else "# Search benchmark results\n"
    pattern = re.compile(rf"^{re.escape(SECTION)}\n.*?(?=^## |^<!-- |\Z)", re.S | re.M)
    block = "\n".join(lines) + "\n"
    text = pattern.sub(block, text) if pattern.search(text) else text.rstrip("\n") + "\n\n" + block
    run.RESULTS.write_text(text)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--engine", choices=("sqlite", "postgresql", "both"), default="both")
    parser.add_argument("--duration", type=int, default=10)
    parser.add_argument("--connections", type=int, default=4)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--workers", type=int, default=len(os.sched_getaffinity(0)))
    parser.add_argument("--no-results-md", action="store_true")
    args = parser.parse_args()
    engines = ["sqlite", "postgresql"] if args.engine == "both" else [args.engine]
    runs = {}
    for engine in engines:
        started = time.monotonic()
        runs[engine] = bench(engine, args)
        r = runs[engine]
        print(
            f"{engine}: page {r['page']['rps']} req/s, API {r['api']['rps']} req/s, "
            f"page costs {r['cost_ratio']}x the API ({time.monotonic() - started:.0f} s)"
        )
    if not args.no_results_md:
        write_results(runs, args)


if __name__ == "__main__":
    main()
