"""Search benchmark: N synthetic services, gunicorn as in production, wrk from a second process.

    python bench/run.py [--engine sqlite|postgresql|both] [--services 50000] [--duration 10]
                        [--connections 8] [--seed 1] [--rebuild] [--ranker tantivy|sql]
                        [--datasette] [--no-repeated]

For each engine: build the database with bench/generate.py (or reuse it when its marker says
it was built with the same N, seed, generator version and migration head), start
`gunicorn -w <cores> wsgi:app` on a free port, check that every benchmark URL answers 200,
warm up, then run wrk once per query class, once for the ceiling (/healthz, no database) and
once for the mixed set, with the result cache off (RESULT_CACHE_SIZE=0: the search itself is
measured). Then a second gunicorn with the result cache on, for the `repeated` classes: one
query asked again and again, answered from the result cache (`repeated`) and revalidated with
its ETag (`repeated_304`). Records each gunicorn worker's resident memory after its run.
With --datasette (SQLite), Datasette's ranked FTS5 on the same file as the comparison
(bench/datasette.py), the same classes' words and wrk settings, in the same run.
Prints a table per engine, writes the raw results to
bench/out/results-<engine>-<N>-<time>.json and rewrites that engine's and N's section of
bench/RESULTS.md. See bench/README.md.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import shutil
import socket
import sqlite3
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from datetime import UTC, datetime
from pathlib import Path

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent
OUT = BENCH / "out"
RESULTS = BENCH / "RESULTS.md"
VENV_PYTHON = ROOT / ".venv" / "bin" / "python"
GUNICORN = ROOT / ".venv" / "bin" / "gunicorn"
LUA = BENCH / "rotate.lua"

# Re-run under the project's virtualenv (psycopg, alembic and the app live there).
if (
    VENV_PYTHON.exists()
    and Path(sys.prefix).resolve() != (ROOT / ".venv").resolve()
    and not os.environ.get("BENCH_NO_REEXEC")
):
    os.execv(str(VENV_PYTHON), [str(VENV_PYTHON), *sys.argv])

sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(BENCH))
import generate  # noqa: E402  (bench/generate.py: the vocabulary the queries are built from)
from served import Served, tail  # noqa: E402  (bench/served.py)

from api.config import TEST_DATA_ENCRYPTION_KEY  # noqa: E402

TARGET_P99_MS = 50.0
TARGET_MIXED_RATIO = 0.25
TARGET_REPEATED_RATIO = 0.70
TARGET_SERVICES = 50_000
# Issue 15's targets at a million services: p99 per class and resident memory per worker.
TARGET_LARGE_SERVICES = 1_000_000
TARGET_LARGE_P99_MS = 100.0
TARGET_LARGE_MEMORY_MB = 300.0
PER_PAGE = 20
CLASSES = ["selective", "common", "phrase", "typo", "filters", "filters_words", "near_me"]
# The same common search again and again: from the result cache, and revalidated (304).
REPEATED_PATH = "/services?" + urllib.parse.urlencode([("search", "children services"), ("per_page", PER_PAGE)])
REPEATED_CLASSES = ["repeated", "repeated_304"]

# --------------------------------------------------------------------------- query set


def _path(params: list[tuple[str, object]]) -> str:
    return "/services?" + urllib.parse.urlencode(params + [("per_page", PER_PAGE)])


def _search(words: str, *filters: tuple[str, object]) -> str:
    return _path([("search", words), *filters])


def query_set() -> dict[str, list[str]]:
    """The fixed benchmark URLs, about 20 per class."""
    towns = {name: (lat, lon) for name, lat, lon in generate.read_towns()}
    relevance = json.loads((ROOT / "tests" / "relevance_queries.json").read_text(encoding="utf-8"))
    phrases = [q["query"] for q in relevance if len(q["query"].split()) >= 3][:20]

    near_towns = [
        "Hartford",
        "New Haven",
        "Bridgeport",
        "Stamford",
        "Waterbury",
        "Norwalk",
        "Danbury",
        "New Britain",
        "West Hartford",
        "Meriden",
        "Bristol",
        "Manchester",
        "Middletown",
        "Norwich",
        "New London",
        "Torrington",
        "Enfield",
        "Windham",
        "Putnam",
        "Old Saybrook",
    ]
    radii = [5000, 10000, 20000]
    near_words = {3: "tutoring", 7: "food pantry", 11: "child care", 15: "dental", 19: "parenting classes"}
    near_me = []
    for i, town in enumerate(near_towns):
        lat, lon = towns[town]
        params: list[tuple[str, object]] = [
            ("lat", lat),
            ("lon", lon),
            ("proximity", radii[i % 3]),
            ("sort", "distance"),
        ]
        if i in near_words:  # "food pantry near me"
            params.insert(0, ("search", near_words[i]))
        near_me.append(_path(params))

    return {
        # words in well under 1% of the services each
        "selective": [_search(word) for word in generate.RARE[:20]],
        # words in most services: the engines rank (and count) most of the table
        "common": [
            _search(q)
            for q in [
                "children",
                "families",
                "services",
                "children services",
                "family services",
                "children and families",
                "services for children",
                "family",
                "child",
                "kids",
                "help for families",
                "children families services",
                "community services",
                "free services for children",
                "support for families",
                "programs for kids",
                "children's health",
                "family support services",
                "youth",
                "parents",
            ]
        ],
        # multi-word family phrases (synonym expansion) from the relevance suite
        "phrase": [_search(q) for q in phrases],
        # misspellings the typo correction must fix
        "typo": [
            _search(q)
            for q in [
                "tutering",
                "food pantri",
                "dentel clinic",
                "asthama",
                "parenting clases",
                "mentorring",
                "counceling",
                "developmental screning",
                "carseat",
                "helthy homes",
                "violance",
                "imunization",
                "dyslexa",
                "chlid care",
                "lead tesing",
                "weatherizaton",
                "hipotherapy",
                "eyeglases",
                "orthodontcs",
                "literacey",
            ]
        ],
        # filters only, no search
        "filters": [
            _path(p)
            for p in [
                [("category", "occh-basic-needs")],
                [("category", "occh-development"), ("age", 3)],
                [("town", "Hartford")],
                [("town", "New Haven"), ("language", "es")],
                [("category", "occh-cradle-to-career-education"), ("town", "Bridgeport")],
                [("age", 4), ("language", "es")],
                [("language", "pt")],
                [("category", "occh-healthy-housing"), ("town", "Waterbury")],
                [("age", 16), ("category", "occh-behavioral-health-connection")],
                [("town", "Stamford"), ("age", 2), ("language", "es")],
                [("category", "occh-asthma-management"), ("town", "Hartford"), ("town", "East Hartford")],
                [("category", "occh-injury-prevention"), ("age", 10)],
                [("postcode", "06106")],
                [("language", "pl"), ("town", "New Britain")],
                [("category", "occh-care-coordination"), ("language", "es")],
                [("age_months", 18)],
                [("town", "Norwich"), ("category", "occh-development")],
                [("category", "occh-legal-help")],
                [("age", 7), ("town", "Meriden")],
                [
                    ("category", "occh-basic-needs"),
                    ("category", "occh-healthy-housing"),
                    ("language", "es"),
                    ("age", 1),
                ],
            ]
        ],
        # search words and filters
        "filters_words": [
            _search(words, *filters)
            for words, filters in [
                ("tutoring", [("town", "Hartford")]),
                ("food pantry", [("language", "es")]),
                ("dental", [("age", 8)]),
                ("child care", [("town", "New Haven"), ("age", 2)]),
                ("asthma", [("category", "occh-asthma-management")]),
                ("parenting classes", [("town", "Bridgeport")]),
                ("mentoring", [("age", 15)]),
                ("housing", [("town", "Waterbury"), ("language", "es")]),
                ("lead", [("age", 1)]),
                ("car seat", [("town", "Stamford")]),
                ("counseling", [("category", "occh-behavioral-health-connection"), ("age", 14)]),
                ("summer camp", [("town", "West Hartford")]),
                ("children", [("town", "Hartford")]),
                ("family services", [("language", "pt")]),
                ("diapers", [("town", "Meriden")]),
                ("legal aid", [("category", "occh-legal-help")]),
                ("early intervention", [("age", 2)]),
                ("literacy", [("language", "es"), ("age", 5)]),
                ("bike helmet", [("town", "Middletown")]),
                ("home visiting", [("town", "New Britain"), ("age", 0)]),
            ]
        ],
        # a point, a radius and distance order (five with words: "food pantry near me")
        "near_me": near_me,
    }


def mixed(queries: dict[str, list[str]]) -> list[str]:
    """Every class's URLs, interleaved so consecutive requests come from different classes."""
    out = []
    for i in range(max(len(urls) for urls in queries.values())):
        out += [urls[i] for urls in queries.values() if i < len(urls)]
    return out


# --------------------------------------------------------------------------- databases


def migration_head() -> str:
    from alembic.script import ScriptDirectory

    return ",".join(sorted(ScriptDirectory(str(ROOT / "migrations")).get_heads()))


def wanted_marker(n: int, seed: int) -> dict:
    return {
        "services": n,
        "seed": seed,
        "generator_version": generate.GENERATOR_VERSION,
        "migration_head": migration_head(),
    }


def _same(marker: dict | None, wanted: dict) -> bool:
    return marker is not None and all(marker.get(k) == v for k, v in wanted.items())


def run_generate(url: str, n: int, seed: int, log: Path) -> dict:
    """bench/generate.py in a child process; its progress goes to the terminal and to `log`."""
    print(f"  generating {n} services (seed {seed}); progress in {log.relative_to(ROOT)}", flush=True)
    cmd = [sys.executable, str(BENCH / "generate.py"), "--database-url", url, "--services", str(n), "--seed", str(seed)]
    rate_line = ""
    with log.open("w") as handle:
        proc = subprocess.Popen(cmd, cwd=ROOT, stdout=subprocess.PIPE, stderr=handle, text=True)
        for line in proc.stdout:
            handle.write(line)
            handle.flush()
            if line.startswith("loaded ") or line.startswith("migrated"):
                print("    " + line.rstrip(), flush=True)
            if line.startswith("loaded "):
                rate_line = line.strip()
        if proc.wait() != 0:
            sys.exit(f"bench/run.py: generate.py failed (exit {proc.returncode}); see {log}")
    match = re.search(r"in ([\d.]+) s: ([\d.]+) services/second", rate_line)
    return {"seconds": float(match.group(1)), "rate": float(match.group(2))} if match else {}


class SqliteDatabase:
    engine = "sqlite"

    def __init__(self, n: int, seed: int):
        self.path = OUT / f"bench_{n}.db"
        self.marker_path = OUT / f"bench_{n}.json"
        self.url = f"sqlite:///{self.path}"
        self.n, self.seed = n, seed

    def describe(self) -> str:
        return f"SQLite {sqlite3.sqlite_version}, {self.path.relative_to(ROOT)}"

    def marker(self) -> dict | None:
        if not self.path.exists() or not self.marker_path.exists():
            return None
        return json.loads(self.marker_path.read_text())

    def build(self, rebuild: bool) -> dict:
        wanted = wanted_marker(self.n, self.seed)
        marker = self.marker()
        if not rebuild and _same(marker, wanted):
            print(f"  reusing {self.path.relative_to(ROOT)} (built {marker.get('built')})", flush=True)
            return marker
        for suffix in ("", "-wal", "-shm"):
            Path(f"{self.path}{suffix}").unlink(missing_ok=True)
        self.marker_path.unlink(missing_ok=True)
        load = run_generate(self.url, self.n, self.seed, OUT / f"generate-sqlite-{self.n}.log")
        marker = {**wanted, "built": now_iso(), "load": load}
        self.marker_path.write_text(json.dumps(marker, indent=2) + "\n")
        return marker


class PostgresDatabase:
    engine = "postgresql"

    def __init__(self, n: int, seed: int, server_url: str):
        from sqlalchemy.engine import make_url

        self.server = make_url(server_url)
        self.name = f"bench_{n}"
        self.url = self.server.set(database=self.name).render_as_string(hide_password=False)
        self.n, self.seed = n, seed

    def admin(self):
        import psycopg

        s = self.server
        return psycopg.connect(
            host=s.host,
            port=s.port or 5432,
            user=s.username,
            password=s.password,
            dbname=s.database or "postgres",
            autocommit=True,
            connect_timeout=5,
        )

    def describe(self) -> str:
        with self.admin() as conn:
            version = conn.execute("SHOW server_version").fetchone()[0]
        return f"PostgreSQL {version}, database {self.name}"

    def marker(self) -> dict | None:
        with self.admin() as conn:
            row = conn.execute(
                "SELECT shobj_description(oid, 'pg_database') FROM pg_database WHERE datname = %s", (self.name,)
            ).fetchone()
        if row is None or not row[0]:
            return None
        try:
            return json.loads(row[0])
        except ValueError:
            return None

    def build(self, rebuild: bool) -> dict:
        wanted = wanted_marker(self.n, self.seed)
        marker = self.marker()
        if not rebuild and _same(marker, wanted):
            print(f"  reusing database {self.name} (built {marker.get('built')})", flush=True)
            return marker
        with self.admin() as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{self.name}" WITH (FORCE)')
            conn.execute(f'CREATE DATABASE "{self.name}"')
        load = run_generate(self.url, self.n, self.seed, OUT / f"generate-postgresql-{self.n}.log")
        marker = {**wanted, "built": now_iso(), "load": load}
        with self.admin() as conn:
            # The marker lives on the database itself, so a dropped database is rebuilt.
            conn.execute(f"COMMENT ON DATABASE \"{self.name}\" IS '{json.dumps(marker).replace(chr(39), chr(39) * 2)}'")
        import psycopg

        s = self.server
        with psycopg.connect(
            host=s.host, port=s.port or 5432, user=s.username, password=s.password, dbname=self.name, autocommit=True
        ) as conn:
            conn.execute("VACUUM ANALYZE")
        return marker


# --------------------------------------------------------------------------- server and wrk


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class Server(Served):
    """gunicorn as `make serve` runs it: sync workers, one per core."""

    name = "gunicorn"

    def __init__(
        self,
        database_url: str,
        workers: int,
        log: Path,
        result_cache: bool = False,
        ranker: str | None = None,
        index_dir: str | None = None,
    ):
        self.port = free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        self.workers = workers
        self.log = log
        # The per-address rate limit (api/limits.py) would answer wrk's one address with 429s:
        # the benchmark measures the search, so the limiter is off, and said so in RESULTS.md.
        # The query classes measure the search, so the result cache is off unless asked for.
        env = {
            **os.environ,
            "DATABASE_URL": database_url,
            "RATELIMIT_ENABLED": "false",
            # The database was built with the test suite's key (bench/generate.py, TestConfig).
            "DATA_ENCRYPTION_KEY": TEST_DATA_ENCRYPTION_KEY,
            "RESULT_CACHE_SIZE": os.environ.get("RESULT_CACHE_SIZE", "1000") if result_cache else "0",
        }
        env.pop("REDIS_URL", None)  # the in-process result cache: nothing else to measure
        if ranker:
            env["SEARCH_RANKER"] = ranker
        if index_dir:
            Path(index_dir).mkdir(parents=True, exist_ok=True)
            env["SEARCH_INDEX_DIR"] = str(Path(index_dir).resolve())
        cmd = [str(GUNICORN), "-w", str(workers), "-b", f"127.0.0.1:{self.port}", "wsgi:app"]
        self.handle = log.open("w")
        self.proc = subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=self.handle, stderr=subprocess.STDOUT)

    def wait_ready(self, timeout: float = 60) -> None:
        self.wait_answers("/healthz", timeout)

    def wait_ranked(self, timeout: float = 1800) -> float:
        """With SEARCH_RANKER=tantivy, search until every worker has logged that its ranking
        index is built (core/ranking.py; in the background past INLINE_BUILD_LIMIT services,
        when a worker ranks in the database meanwhile), so that no class measures a worker
        that is still building. Returns the seconds waited."""
        started = time.monotonic()
        built = re.compile(r"ranking index of \d+ services built in ([\d.]+) s \(process (\d+)\)")
        url = self.base + "/services?search=audiology&per_page=1"

        def ask() -> None:
            try:
                with urllib.request.urlopen(url, timeout=120) as response:
                    response.read()
            except (urllib.error.URLError, ConnectionError, OSError):
                pass

        while time.monotonic() - started < timeout:
            if self.proc.poll() is not None:
                sys.exit(f"bench/run.py: gunicorn exited ({self.proc.returncode}):\n{tail(self.log)}")
            builds = dict((pid, float(seconds)) for seconds, pid in built.findall(self.log.read_text(errors="replace")))
            if len(builds) >= self.workers:
                self.index_build_s = sorted(builds.values())
                return time.monotonic() - started
            askers = [threading.Thread(target=ask) for _ in range(self.workers * 2)]
            for asker in askers:
                asker.start()
            for asker in askers:
                asker.join()
            time.sleep(1)
        self.stop()
        sys.exit(f"bench/run.py: the workers' ranking indexes were not built within {timeout:.0f} s")

    def worker_memory_mib(self) -> list[float]:
        """VmRSS of each worker (the master's children), in MiB, from /proc."""
        sizes = []
        for stat in Path("/proc").glob("[0-9]*/stat"):
            try:
                fields = stat.read_text().rsplit(")", 1)[1].split()
                if int(fields[1]) != self.proc.pid:  # field 4, ppid
                    continue
                status = (stat.parent / "status").read_text()
            except (OSError, IndexError, ValueError):
                continue
            found = re.search(r"^VmRSS:\s*(\d+) kB", status, re.M)
            if found:
                sizes.append(round(int(found.group(1)) / 1024, 1))
        return sorted(sizes)


def check_urls(base: str, queries: dict[str, list[str]]) -> dict[str, list[dict]]:
    """GET every URL once: each must answer 200 with a JSON page (fails loudly otherwise).
    Also the first warm-up. Returns, per class, each URL's total_items and time."""
    failures, checked = [], {}
    for cls, urls in queries.items():
        checked[cls] = []
        for path in urls:
            started = time.perf_counter()
            try:
                with urllib.request.urlopen(base + path, timeout=60) as response:
                    body = json.loads(response.read())
                    status = response.status
            except urllib.error.HTTPError as exc:
                status, body = exc.code, exc.read()[:300]
            except (urllib.error.URLError, OSError, ValueError) as exc:
                status, body = None, str(exc)
            ms = (time.perf_counter() - started) * 1000
            if status != 200:
                failures.append(f"  {cls}: {path} -> {status}: {body!r}")
                continue
            checked[cls].append({"path": path, "total_items": body.get("total_items"), "first_ms": round(ms, 1)})
    if failures:
        sys.exit("bench/run.py: these benchmark URLs did not answer 200:\n" + "\n".join(failures))
    return checked


def run_wrk(
    base: str, paths: list[str], duration: int, connections: int, threads: int, headers: dict | None = None
) -> dict:
    with tempfile.NamedTemporaryFile("w", suffix=".txt", dir=OUT, delete=False) as handle:
        handle.write("\n".join(paths) + "\n")
        paths_file = handle.name
    cmd = [
        "wrk",
        f"-t{threads}",
        f"-c{connections}",
        f"-d{duration}s",  # wrk takes whole seconds "--timeout", "10s",
        *[arg for name, value in (headers or {}).items() for arg in ("-H", f"{name}: {value}")],
        "-s",
        str(LUA),
        base,
        "--",
        paths_file,
        str(threads),
    ]
    try:
        proc = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=duration + 60)
    finally:
        os.unlink(paths_file)
    line = next((out for out in proc.stdout.splitlines() if out.startswith("BENCH_JSON ")), None)
    if proc.returncode != 0 or line is None:
        sys.exit(f"bench/run.py: wrk failed ({proc.returncode}):\n{proc.stdout}\n{proc.stderr}")
    raw = json.loads(line[len("BENCH_JSON ") :])
    seconds = raw["duration_us"] / 1e6
    lat = raw["latency_us"]
    return {
        "requests": raw["requests"],
        "seconds": round(seconds, 3),
        "rps": round(raw["requests"] / seconds, 1) if seconds else 0.0,
        "p50_ms": round(lat["p50"] / 1000, 2),
        "p90_ms": round(lat["p90"] / 1000, 2),
        "p99_ms": round(lat["p99"] / 1000, 2),
        "max_ms": round(lat["max"] / 1000, 2),
        "mean_ms": round(lat["mean"] / 1000, 2),
        "errors": raw["errors"],
        "urls": len(paths),
    }


# --------------------------------------------------------------------------- reporting


def now_iso() -> str:
    return datetime.now(UTC).replace(microsecond=0).isoformat()


def machine() -> dict:
    info = {"nproc": len(os.sched_getaffinity(0)), "kernel": platform.release(), "python": platform.python_version()}
    try:
        cpuinfo = Path("/proc/cpuinfo").read_text()
        found = re.search(r"^model name\s*:\s*(.+)$", cpuinfo, re.M)
        info["cpu"] = found.group(1).strip() if found else platform.processor() or "unknown"
    except OSError:
        info["cpu"] = platform.processor() or "unknown"
    try:
        meminfo = Path("/proc/meminfo").read_text()
        kb = int(re.search(r"^MemTotal:\s*(\d+) kB", meminfo, re.M).group(1))
        info["memory"] = f"{kb / 1024 / 1024:.1f} GiB"
    except (OSError, AttributeError):
        info["memory"] = "unknown"
    wrk = subprocess.run(["wrk", "-v"], capture_output=True, text=True)
    info["wrk"] = (wrk.stdout or wrk.stderr).split("Copyright")[0].strip()
    gunicorn = subprocess.run([str(GUNICORN), "--version"], capture_output=True, text=True)
    info["gunicorn"] = (gunicorn.stdout or gunicorn.stderr).strip()
    return info


def verdict(results: dict[str, dict], n: int, memory: dict[str, list[float]] | None = None) -> dict:
    """Issue 15's targets for this size: at 50,000 services p99 <= 50 ms per class and mixed >=
    25% of the ceiling; at 1,000,000 p99 <= 100 ms per class and <= 300 MB per worker. A class
    with requests that wrk gave up on (its 2 s timeout) is over the p99 target whatever the p99
    of the requests that finished."""
    large = n >= TARGET_LARGE_SERVICES
    p99_target = TARGET_LARGE_P99_MS if large else TARGET_P99_MS
    ceiling = results["ceiling"]["rps"]
    slow = [
        c for c in CLASSES + ["mixed"] if results[c]["p99_ms"] > p99_target or results[c]["errors"].get("timeout", 0)
    ]
    ratio = results["mixed"]["rps"] / ceiling if ceiling else 0.0
    repeated = {c: round(results[c]["rps"] / ceiling, 3) if ceiling else 0.0 for c in REPEATED_CLASSES if c in results}
    found = {
        "p99_target_ms": p99_target,
        "p99_ok": not slow,
        "p99_over_target": slow,
        "mixed_ratio": round(ratio, 3),
        "mixed_ratio_ok": ratio >= TARGET_MIXED_RATIO,
        "repeated_ratios": repeated,
        "repeated_ratio_ok": bool(repeated) and all(r >= TARGET_REPEATED_RATIO for r in repeated.values()),
        "at_target_size": n in (TARGET_SERVICES, TARGET_LARGE_SERVICES),
        "large": large,
    }
    if large and memory and memory.get("search"):
        largest_mb = max(memory["search"]) * 1.048576  # MiB -> MB
        found.update(memory_mb=round(largest_mb, 1), memory_ok=largest_mb <= TARGET_LARGE_MEMORY_MB)
    return found


def table(results: dict[str, dict]) -> list[str]:
    ceiling = results["ceiling"]["rps"]
    lines = [
        "| class | URLs | req/s | p50 ms | p99 ms | ratio to ceiling | errors |",
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for cls in CLASSES + ["mixed"] + REPEATED_CLASSES + ["ceiling"]:
        if cls not in results:
            continue
        r = results[cls]
        errors = sum(r["errors"].values())
        ratio = r["rps"] / ceiling if ceiling else 0.0
        lines.append(
            f"| {cls} | {r['urls']} | {r['rps']:.1f} | {r['p50_ms']:.1f} | {r['p99_ms']:.1f} | {ratio:.3f} | {errors} |"
        )
    return lines


def verdict_lines(v: dict) -> list[str]:
    size = (
        "" if v["at_target_size"] else " (issue 15 sets them at 50,000 and 1,000,000 services; this run is another N)"
    )
    p99 = "met" if v["p99_ok"] else "NOT met: " + ", ".join(v["p99_over_target"])
    ratio = "met" if v["mixed_ratio_ok"] else "NOT met"
    return [
        f"Targets{size}:",
        f"- p99 <= {v.get('p99_target_ms', TARGET_P99_MS):.0f} ms for every query class "
        f"(a class with wrk timeouts is over it): {p99}",
        *(
            [
                f"- worker memory <= {TARGET_LARGE_MEMORY_MB:.0f} MB: "
                + ("met" if v["memory_ok"] else "NOT met")
                + f" (largest worker {v['memory_mb']:.0f} MB)"
            ]
            if "memory_ok" in v
            else []
        ),
        f"- mixed throughput >= {TARGET_MIXED_RATIO:.0%} of the ceiling"
        + (" (a 50,000-service target)" if v.get("large") else "")
        + f": {ratio} ({v['mixed_ratio']:.1%})",
        f"- repeated query >= {TARGET_REPEATED_RATIO:.0%} of the ceiling: "
        + (
            ("met" if v.get("repeated_ratio_ok") else "NOT met")
            + " ("
            + ", ".join(f"{cls} {r:.1%}" for cls, r in v["repeated_ratios"].items())
            + ")"
            if v.get("repeated_ratios")
            else "not run (--no-repeated)"
        ),
    ] + (
        [
            f"- every class >= {TARGET_DATASETTE_FACTOR:g}x Datasette's req/s: "
            + ("met" if v["datasette_ok"] else "NOT met: " + ", ".join(v["datasette_under_target"]))
        ]
        if "datasette_ok" in v
        else []
    )


def memory_text(memory: dict[str, list[float]]) -> str:
    names = {"search": "result cache off", "repeated": "result cache on"}
    return "; ".join(
        f"{', '.join(f'{m:.1f}' for m in sizes)} ({names.get(server, server)})" for server, sizes in memory.items()
    )


def datasette_section(run: dict) -> list[str]:
    d = run["datasette"]
    return [
        "",
        f"Against Datasette, measured in the same run, same file, same wrk settings ({d['version']}, "
        f"`datasette serve --immutable`, no plugins, one process with {d['sql_threads']} SQL threads; "
        f"the API: gunicorn with {run['workers']} sync workers). Datasette's canned query "
        "(`bench/datasette.py`) ranks `service_fts` with bm25 and the API's weights, 20 rows, JSON; "
        "it takes each class's search words (escaped as Datasette's table search does: every word "
        "required), without the filters or the distance: `filters` has no words and is left out, "
        "`near_me` keeps its 5 URLs with words, `filters_words` its words only. Datasette's ceiling "
        "is `/-/plugins.json` (no database). Datasette resident memory after its run: "
        f"{d.get('memory_mib', 0):.1f} MiB.",
        "",
        *datasette_table(run["results"], d),
    ]


def write_results_section(run: dict) -> None:
    key = f"{run['engine']}:{run['services']}" + (":sql" if run["ranker"] == "sql" else "")
    m = run["machine"]
    load = run["database"].get("load") or {}
    load_text = (
        f"{load['rate']:.1f} services/s ({load['seconds']:.0f} s, built {run['database'].get('built')})"
        if load
        else f"reused database built {run['database'].get('built')}"
    )
    body = [
        f"<!-- bench:{key} -->",
        f"## {run['engine']}, {run['services']:,} services" + (", SEARCH_RANKER=sql" if run["ranker"] == "sql" else ""),
        "",
        f"- date: {run['date']}",
        f"- ranker: SEARCH_RANKER={run['ranker']}; ranking index "
        + (f"in files (SEARCH_INDEX_DIR={run['index_dir']})" if run.get("index_dir") else "in memory"),
        f"- machine: {m['nproc']} cores, {m['memory']} RAM, {m['cpu']}; Linux {m['kernel']}; Python {m['python']}",
        f"- database: {run['database_description']}; load rate {load_text}",
        f"- server: {m['gunicorn']}, {run['workers']} sync workers; client: {m['wrk']}, "
        f"{run['threads']} threads, {run['connections']} connections, {run['duration']:g} s per class "
        f"(after {run['warmup']:g} s warm-up), on the same machine; rate limiting off (RATELIMIT_ENABLED=false); "
        f"totals exact up to {os.environ.get('EXACT_COUNT_LIMIT', '10000')} matches (EXACT_COUNT_LIMIT)",
        f"- 1-minute load average before / after: {run['loadavg']['before']:.2f} / {run['loadavg']['after']:.2f}",
        f"- worker memory (VmRSS after the run, MiB): {memory_text(run['worker_memory_mib'])}",
        *(
            [f"- ranking index built by each worker in {', '.join(f'{b:.1f}' for b in run['index_build_s'])} s"]
            if run.get("index_build_s")
            else []
        ),
        "",
        *table(run["results"]),
        "",
        *verdict_lines(run["verdict"]),
        *(datasette_section(run) if run.get("datasette") else []),
        f"<!-- /bench:{key} -->",
    ]
    section = "\n".join(body) + "\n"
    header = (
        "# Search benchmark results\n\n"
        "Written by `bench/run.py` (see `bench/README.md`): one section per engine and number of\n"
        "services, rewritten by each run. Latencies are wrk's, per request; `ratio to ceiling` is\n"
        "req/s over the req/s of `/healthz` (no database) on the same server settings. The query\n"
        "classes run with the result cache off; `repeated` (one query, answered from the result\n"
        "cache) and `repeated_304` (the same with its ETag in If-None-Match) on a server with it on.\n"
    )
    text = RESULTS.read_text() if RESULTS.exists() else header
    pattern = re.compile(rf"<!-- bench:{re.escape(key)} -->.*?<!-- /bench:{re.escape(key)} -->\n", re.S)
    if pattern.search(text):
        text = pattern.sub(lambda _: section, text)
    else:
        text = text.rstrip("\n") + "\n\n" + section
    RESULTS.write_text(text)


# --------------------------------------------------------------------------- main


def bench_engine(engine: str, args, info: dict) -> dict:
    print(f"\n=== {engine}: {args.services} services ===", flush=True)
    database = (
        SqliteDatabase(args.services, args.seed)
        if engine == "sqlite"
        else PostgresDatabase(args.services, args.seed, args.pg_url)
    )
    marker = database.build(args.rebuild)
    if args.build_only:
        return {}
    description = database.describe()
    queries = query_set()
    everything = mixed(queries)
    server = Server(
        database.url, args.workers, OUT / f"gunicorn-{engine}.log", ranker=args.ranker, index_dir=args.index_dir
    )
    results: dict[str, dict] = {}
    memory: dict[str, list[float]] = {}
    load_before = os.getloadavg()[0]
    try:
        server.wait_ready()
        if (args.ranker or os.environ.get("SEARCH_RANKER") or "tantivy") == "tantivy":
            waited = server.wait_ranked()
            print(
                f"  every worker's ranking index built ({waited:.0f} s after start; "
                f"builds of {', '.join(f'{b:.1f}' for b in server.index_build_s)} s)",
                flush=True,
            )
        print(f"  gunicorn -w {args.workers} on {server.base}; checking {len(everything)} URLs", flush=True)
        checked = check_urls(server.base, queries)
        empty = {cls: sum(1 for c in rows if not c["total_items"]) for cls, rows in checked.items()}
        if any(empty.values()):
            print("  URLs with no results: " + ", ".join(f"{c} {n}" for c, n in empty.items() if n), flush=True)
        if args.warmup > 0:
            run_wrk(server.base, everything, args.warmup, args.connections, args.threads)
        plan = [("ceiling", ["/healthz"])] + [(cls, queries[cls]) for cls in CLASSES] + [("mixed", everything)]
        for cls, paths in plan:
            results[cls] = run_wrk(server.base, paths, args.duration, args.connections, args.threads)
            r = results[cls]
            print(
                f"  {cls:<14} {r['rps']:8.1f} req/s  p50 {r['p50_ms']:7.1f} ms  p99 {r['p99_ms']:7.1f} ms", flush=True
            )
        memory["search"] = server.worker_memory_mib()
    finally:
        server.stop()
    if not args.no_repeated:
        results.update(bench_repeated(database.url, engine, args, memory))
    compared = None
    if args.datasette and engine == "sqlite":
        compared = bench_datasette(database.path, queries, args)
    load_after = os.getloadavg()[0]
    for cls, r in results.items():
        if sum(r["errors"].values()):
            print(f"  WARNING: {cls}: wrk counted errors {r['errors']}", flush=True)
    run = {
        "engine": engine,
        "services": args.services,
        "seed": args.seed,
        "date": now_iso(),
        "machine": info,
        "database": marker,
        "database_description": description,
        "workers": args.workers,
        "threads": args.threads,
        "connections": args.connections,
        "duration": args.duration,
        "warmup": args.warmup,
        # 1-minute load average: well above what gunicorn + wrk explain means someone else was busy
        "loadavg": {"before": round(load_before, 2), "after": round(load_after, 2)},
        "worker_memory_mib": memory,
        "index_build_s": getattr(server, "index_build_s", None),
        "index_dir": args.index_dir,
        "ranker": args.ranker or os.environ.get("SEARCH_RANKER") or "tantivy (default)",
        "results": results,
        "urls": checked,
    }
    run["verdict"] = verdict(results, args.services, memory)
    if compared:
        run["datasette"] = compared
        run["verdict"].update(datasette_verdict(results, compared))
    stamp = run["date"].replace(":", "").replace("-", "").replace("+0000", "Z")
    tag = f"-{args.ranker}" if args.ranker else ""
    raw_path = OUT / f"results-{engine}{tag}-{args.services}-{stamp}.json"
    raw_path.write_text(json.dumps(run, indent=2) + "\n")
    print(
        f"\n{engine}, {args.services:,} services, {args.workers} workers, {args.connections} connections, "
        f"{args.duration:g} s per class:\n"
    )
    print("\n".join(table(results)))
    print()
    if compared:
        print()
        print("\n".join(datasette_table(results, compared)))
    print()
    print("\n".join(verdict_lines(run["verdict"])))
    print(f"\nraw results: {raw_path.relative_to(ROOT)}", flush=True)
    if not args.no_results_md:
        write_results_section(run)
        print(f"updated {RESULTS.relative_to(ROOT)}", flush=True)
    return run


DATASETTE_CLASSES = ["selective", "common", "phrase", "typo", "filters_words", "near_me"]
TARGET_DATASETTE_FACTOR = 3.0


def bench_datasette(db_path: Path, queries: dict[str, list[str]], args) -> dict:
    """Datasette's ranked FTS5 (bench/datasette.py) on the same file, the same classes' words,
    the same wrk settings, right after the API's run."""
    import datasette as ds

    ds.ensure_installed()
    server = ds.DatasetteServer(db_path, free_port(), OUT / "datasette", OUT / "datasette.log")
    out: dict = {"version": ds.version(), "sql": ds.canned_sql(), "sql_threads": server.sql_threads, "results": {}}
    try:
        server.wait_ready()
        out["plugins"] = server.plugins()
        if out["plugins"]:
            sys.exit(f"bench/run.py: Datasette has plugins installed: {out['plugins']}")
        paths = {cls: ds.paths_for(queries[cls]) for cls in DATASETTE_CLASSES}
        everything = mixed(paths)
        out["urls"] = {cls: server.check(p) for cls, p in paths.items()}
        print(f"  {out['version']} (--immutable, no plugins) on {server.base}; {len(everything)} URLs", flush=True)
        if args.warmup > 0:
            run_wrk(server.base, everything, args.warmup, args.connections, args.threads)
        plan = [("ceiling", ["/-/plugins.json"])] + [(cls, paths[cls]) for cls in DATASETTE_CLASSES]
        plan.append(("mixed", everything))
        for cls, urls in plan:
            out["results"][cls] = r = run_wrk(server.base, urls, args.duration, args.connections, args.threads)
            print(
                f"  datasette {cls:<14} {r['rps']:8.1f} req/s  p50 {r['p50_ms']:7.1f} ms  p99 {r['p99_ms']:7.1f} ms",
                flush=True,
            )
        out["memory_mib"] = server.memory_mib()
    finally:
        server.stop()
    return out


def datasette_table(results: dict[str, dict], compared: dict) -> list[str]:
    ds = compared["results"]
    lines = [
        "| class | API URLs | API req/s | API p50 ms | API p99 ms | Datasette URLs | Datasette req/s "
        "| Datasette p50 ms | Datasette p99 ms | API / Datasette req/s |",
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for cls in DATASETTE_CLASSES + ["mixed", "ceiling"]:
        if cls not in ds or cls not in results:
            continue
        a, d = results[cls], ds[cls]
        factor = a["rps"] / d["rps"] if d["rps"] else 0.0
        lines.append(
            f"| {cls} | {a['urls']} | {a['rps']:.1f} | {a['p50_ms']:.1f} | {a['p99_ms']:.1f} | {d['urls']} "
            f"| {d['rps']:.1f} | {d['p50_ms']:.1f} | {d['p99_ms']:.1f} | {factor:.2f}x |"
        )
    return lines


def datasette_verdict(results: dict[str, dict], compared: dict) -> dict:
    ds = compared["results"]
    factors = {
        cls: round(results[cls]["rps"] / ds[cls]["rps"], 2) if ds[cls]["rps"] else None
        for cls in DATASETTE_CLASSES + ["mixed"]
        if cls in ds and cls in results
    }
    under = [cls for cls, f in factors.items() if f is None or f < TARGET_DATASETTE_FACTOR]
    return {"datasette_factors": factors, "datasette_under_target": under, "datasette_ok": not under}


def bench_repeated(database_url: str, engine: str, args, memory: dict[str, list[float]]) -> dict[str, dict]:
    """The repeated query on a server with the result cache on: from the cache, and as a 304."""
    server = Server(database_url, args.workers, OUT / f"gunicorn-{engine}-repeated.log", result_cache=True)
    results = {}
    try:
        server.wait_ready()
        with urllib.request.urlopen(server.base + REPEATED_PATH, timeout=60) as response:
            etag = response.headers.get("ETag")
        if not etag:
            sys.exit(f"bench/run.py: {REPEATED_PATH} answered without an ETag")
        try:
            urllib.request.urlopen(
                urllib.request.Request(server.base + REPEATED_PATH, headers={"If-None-Match": etag}), timeout=60
            )
            sys.exit(f"bench/run.py: {REPEATED_PATH} with its ETag in If-None-Match did not answer 304")
        except urllib.error.HTTPError as exc:  # urllib raises on a 304
            if exc.code != 304:
                sys.exit(f"bench/run.py: {REPEATED_PATH} with its ETag in If-None-Match answered {exc.code}, not 304")
        for cls, headers in (("repeated", None), ("repeated_304", {"If-None-Match": etag})):
            if args.warmup > 0 and cls == "repeated":
                run_wrk(server.base, [REPEATED_PATH], args.warmup, args.connections, args.threads)
            results[cls] = run_wrk(server.base, [REPEATED_PATH], args.duration, args.connections, args.threads, headers)
            r = results[cls]
            print(
                f"  {cls:<14} {r['rps']:8.1f} req/s  p50 {r['p50_ms']:7.1f} ms  p99 {r['p99_ms']:7.1f} ms", flush=True
            )
        memory["repeated"] = server.worker_memory_mib()
    finally:
        server.stop()
    return results


def main(argv: list[str] | None = None) -> int:
    cores = len(os.sched_getaffinity(0))
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--engine", choices=["sqlite", "postgresql", "both"], default="both")
    parser.add_argument("--services", type=int, default=50_000, help="synthetic services (default 50000)")
    parser.add_argument("--seed", type=int, default=1, help="generator seed (default 1)")
    parser.add_argument("--duration", type=int, default=10, help="seconds of wrk per class (default 10)")
    parser.add_argument("--connections", type=int, default=8, help="wrk connections (default 8)")
    parser.add_argument("--threads", type=int, default=None, help="wrk threads (default min(cores, connections))")
    parser.add_argument("--workers", type=int, default=cores, help=f"gunicorn workers (default cores = {cores})")
    parser.add_argument(
        "--warmup", type=int, default=None, help="seconds of mixed load before timing (default duration/2, at least 1)"
    )
    parser.add_argument("--rebuild", action="store_true", help="rebuild the databases even when their marker matches")
    parser.add_argument(
        "--pg-url",
        default=os.environ.get("BENCH_PG_URL", "postgresql://postgres@127.0.0.1:5432/postgres"),
        help="PostgreSQL server to create bench_<N> on (env BENCH_PG_URL)",
    )
    parser.add_argument("--no-results-md", action="store_true", help="do not rewrite bench/RESULTS.md")
    parser.add_argument(
        "--ranker", choices=["tantivy", "sql"], default=None, help="SEARCH_RANKER for the API (default: the app's)"
    )
    parser.add_argument(
        "--index-dir",
        default=None,
        help="SEARCH_INDEX_DIR for the API: each worker keeps its ranking index in files under it (default: in memory)",
    )
    parser.add_argument(
        "--datasette",
        action="store_true",
        help="SQLite: also run Datasette's ranked FTS5 on the same file (bench/datasette.py) as the comparison",
    )
    parser.add_argument("--no-repeated", action="store_true", help="skip the repeated classes (result cache on)")
    parser.add_argument(
        "--build-only",
        action="store_true",
        help="build (or check) the databases and stop: load a large directory while the machine is busy, measure later",
    )
    args = parser.parse_args(argv)
    args.threads = args.threads or max(1, min(cores, args.connections))
    args.warmup = max(1, args.duration // 2) if args.warmup is None else args.warmup
    if args.duration < 1:
        parser.error("--duration must be at least 1 (wrk takes whole seconds)")
    if shutil.which("wrk") is None:
        sys.exit("bench/run.py: wrk is not installed (apt-get install wrk)")
    if not GUNICORN.exists():
        sys.exit(f"bench/run.py: {GUNICORN} is missing; run `make install` first")
    OUT.mkdir(exist_ok=True)
    info = machine()
    engines = ["sqlite", "postgresql"] if args.engine == "both" else [args.engine]
    for engine in engines:
        bench_engine(engine, args, info)
    return 0


if __name__ == "__main__":
    sys.exit(main())
