"""Soak test: mixed public reads and referral writes at a fixed concurrency for a bounded time.

    python bench/soak.py [--engine postgresql|sqlite] [--duration 60] [--concurrency 16]
                         [--workers <cores>] [--no-results-md]

Builds a fresh migrated and seeded database (SQLite file under bench/out/, or a PostgreSQL
database `soak_<pid>`), creates one API key per client thread, starts gunicorn as `make serve`
does (sync workers, one per core) with rate limiting on at its production defaults (counters in
Redis when it answers), and runs `--concurrency` client threads until `--duration` is over.
Each request is one of: a search (bench/run.py's query set), a list, a record, a referral
write (its own Idempotency-Key; a cut connection or a 5xx is retried with the same key and
body), or a read of a referral the thread made. Then it checks the database: every referral
answered 201 exists, and no key made two. Prints a report; writes the `Soak` section of
bench/RESULTS.md; exits 1 on any error, lost or duplicated referral. See bench/README.md.
"""

from __future__ import annotations

import argparse
import collections
import json
import os
import random
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
import uuid
from collections import Counter
from pathlib import Path

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent
VENV_PYTHON = ROOT / ".venv" / "bin" / "python"
if (
    VENV_PYTHON.exists()
    and Path(sys.prefix).resolve() != (ROOT / ".venv").resolve()
    and not os.environ.get("BENCH_NO_REEXEC")
):
    os.execv(str(VENV_PYTHON), [str(VENV_PYTHON), *sys.argv])

sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(BENCH))
import run as search_bench  # noqa: E402  (bench/run.py: the query set, ports, machine and dates)

from api.config import TEST_DATA_ENCRYPTION_KEY  # noqa: E402

OUT = BENCH / "out"
RESULTS = BENCH / "RESULTS.md"
GUNICORN = ROOT / ".venv" / "bin" / "gunicorn"
# Share of each kind of request (weights).
MIX = {"search": 35, "list": 20, "record": 20, "referral_write": 20, "referral_read": 5}
LISTS = [
    "/services",
    "/services?per_page=5&page=2",
    "/organizations",
    "/programs",
    "/taxonomy_terms",
    "/service_at_locations",
    "/services?category=occh-development",
]
OK = {200, 201, 304}
WRITE_TRIES = 10
# Client addresses the soak speaks for, through one trusted proxy (PROXY_HOPS=1): the public
# budget is per address, and a directory's readers are many.
ADDRESSES = [f"10.20.{i // 250}.{i % 250 + 1}" for i in range(64)]
REFERRAL_SERVICE = "Help Me Grow Connecticut"


def referral_body(service_id: str, tag: str) -> dict:
    """A referral of a made-up child; `tag` (its Idempotency-Key) makes each body distinct."""
    return {
        "service_id": service_id,
        "child": {"given_name": "Soak", "family_name": "Test", "birth_date": "2024-03-02", "town": "Hartford"},
        "guardian": {
            "name": "Soak Guardian",
            "relationship": "mother",
            "phone": "860-555-0100",
            "preferred_language": "en",
            "contact_preference": "phone",
            "may_leave_message": True,
        },
        "consent": {
            "obtained": True,
            "obtained_by": "Soak Referrer",
            "relationship": "mother",
            "obtained_at": "2026-11-21T12:00:00Z",
            "method": "verbal",
        },
        "reason": f"Soak test referral {tag}.",
        "urgency": "routine",
        "referrer": {"name": "Soak Referrer", "organization": "Soak Pediatrics", "phone": "860-555-0101"},
    }


# --------------------------------------------------------------------------- database


class Database:
    """A fresh database for one soak: migrated, seeded, with one partner key per client."""

    def __init__(self, engine: str, pg_url: str):
        self.engine = engine
        if engine == "sqlite":
            OUT.mkdir(exist_ok=True)
            self.path = OUT / f"soak_{os.getpid()}.db"
            self.url = f"sqlite:///{self.path}"
        else:
            from sqlalchemy.engine import make_url

            self.server = make_url(pg_url)
            self.name = f"soak_{os.getpid()}"
            self.url = self.server.set(database=self.name).render_as_string(hide_password=False)
            with self.admin() as conn:
                conn.execute(f'CREATE DATABASE "{self.name}"')

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
        if self.engine == "sqlite":
            import sqlite3

            return f"SQLite {sqlite3.sqlite_version}, a fresh file with the seed directory"
        with self.admin() as conn:
            version = conn.execute("SHOW server_version").fetchone()[0]
        return f"PostgreSQL {version}, a fresh database with the seed directory"

    def prepare(self, partners: int) -> tuple[list[str], str]:
        """Migrate, seed and create the partners' keys; return the keys and the id of the
        service the referrals go to."""
        from flask_migrate import upgrade
        from sqlalchemy import select

        from api import create_app
        from api.cli import SEED_DIR, load_directory
        from api.config import TestConfig
        from api.extensions import db
        from core import clients
        from models import Service

        app = create_app(TestConfig(self.url))
        with app.app_context():
            upgrade()
            load_directory(db.session, SEED_DIR)
            keys = [
                clients.create_client(db.session, f"Soak partner {n}", ["referrals:submit"], []).key
                for n in range(partners)
            ]
            service_id = db.session.scalar(select(Service.id).where(Service.name == REFERRAL_SERVICE))
            db.session.commit()
            db.session.remove()
            db.engine.dispose()
        return keys, str(service_id)

    def stored_referrals(self) -> tuple[dict[str, int], dict[str, str], set[str]]:
        """(referral count by reason, referral id by Idempotency-Key, referral ids) as stored."""
        from sqlalchemy import select

        from api import create_app
        from api.config import TestConfig
        from api.extensions import db
        from models import IdempotencyKey, Referral

        app = create_app(TestConfig(self.url))
        with app.app_context():
            # Reasons are encrypted (each stored value differs): counted here, not by the database.
            by_reason = dict(Counter(db.session.scalars(select(Referral.reason))))
            by_key = {
                key: str(rid) for key, rid in db.session.execute(select(IdempotencyKey.key, IdempotencyKey.referral_id))
            }
            ids = {str(rid) for rid in db.session.scalars(select(Referral.id))}
            db.session.remove()
            db.engine.dispose()
        return by_reason, by_key, ids

    def drop(self) -> None:
        if self.engine == "sqlite":
            for suffix in ("", "-wal", "-shm"):
                Path(f"{self.path}{suffix}").unlink(missing_ok=True)
        else:
            with self.admin() as conn:
                conn.execute(f'DROP DATABASE IF EXISTS "{self.name}" WITH (FORCE)')


# --------------------------------------------------------------------------- server


def redis_url(url: str) -> str:
    """`url` when that Redis answers, else "" (the limiter then counts in each worker's memory)."""
    try:
        import redis

        redis.Redis.from_url(url, socket_connect_timeout=2).ping()
        return url
    except Exception:  # noqa: BLE001 (any failure: no Redis)
        return ""


class Server(search_bench.Server):
    """gunicorn as `make serve` runs it, as in run.py, but with rate limiting on (production
    defaults), counters in Redis when it answers, and one trusted proxy."""

    # Not super().__init__(): that would start a server with rate limiting off.
    def __init__(self, database_url: str, workers: int, redis: str, log: Path):
        self.port = search_bench.free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        self.workers = workers
        self.log = log
        env = {
            **os.environ,
            "DATABASE_URL": database_url,
            "RATELIMIT_ENABLED": "true",
            "REDIS_URL": redis,
            "PROXY_HOPS": "1",
            "RATELIMIT_KEY_PREFIX": f"soak{os.getpid()}",
            "LOG_LEVEL": "WARNING",
            "DATA_ENCRYPTION_KEY": TEST_DATA_ENCRYPTION_KEY,
        }  # the key the database was built with (TestConfig)
        self.handle = log.open("w")
        self.proc = subprocess.Popen(
            [str(GUNICORN), "-w", str(workers), "-b", f"127.0.0.1:{self.port}", "wsgi:app"],
            cwd=ROOT,
            env=env,
            stdout=self.handle,
            stderr=subprocess.STDOUT,
        )


def request(
    method: str, url: str, body: dict | None = None, headers: dict | None = None
) -> tuple[int | None, dict | None]:
    """(status, JSON body) of one request on a new connection; status None if none came."""
    data = json.dumps(body).encode() if body is not None else None
    req = urllib.request.Request(url, data=data, method=method, headers=dict(headers or {}))
    if data is not None:
        req.add_header("Content-Type", "application/json")
    try:
        with urllib.request.urlopen(req, timeout=30) as response:
            status, raw = response.status, response.read()
    except urllib.error.HTTPError as exc:
        status, raw = exc.code, exc.read()
    except OSError:
        return None, None
    try:
        return status, json.loads(raw) if raw else None
    except ValueError:
        return status, None


# --------------------------------------------------------------------------- clients


class Tally:
    """What the client threads saw, under one lock."""

    def __init__(self):
        self.lock = threading.Lock()
        self.latencies: dict[str, list[float]] = collections.defaultdict(list)
        self.statuses: dict[str, collections.Counter] = collections.defaultdict(collections.Counter)
        self.answered: dict[str, str] = {}  # Idempotency-Key -> referral id answered 201
        self.given_up: list[str] = []  # keys never answered 201 (refused with 429, or out of tries)
        self.retried = 0

    def record(self, kind: str, status: int | None, seconds: float) -> None:
        with self.lock:
            self.latencies[kind].append(seconds * 1000)
            self.statuses[kind][str(status) if status else "no answer"] += 1


def client_thread(
    number: int, base: str, key: str, service_id: str, paths: dict[str, list[str]], deadline: float, tally: Tally
) -> None:
    rng = random.Random(number)
    kinds, weights = zip(*MIX.items(), strict=True)
    mine: list[str] = []
    auth = {"Authorization": f"Bearer {key}"}
    while time.monotonic() < deadline:
        kind = rng.choices(kinds, weights)[0]
        proxy = {"X-Forwarded-For": rng.choice(ADDRESSES)}
        if kind == "referral_read" and not mine:
            kind = "referral_write"
        if kind == "referral_write":
            idem = str(uuid.uuid4())
            for _attempt in range(WRITE_TRIES):
                started = time.perf_counter()
                status, answer = request(
                    "POST",
                    base + "/referrals",
                    referral_body(service_id, idem),
                    {**auth, **proxy, "Idempotency-Key": idem},
                )
                tally.record(kind, status, time.perf_counter() - started)
                if status in (200, 201):
                    with tally.lock:
                        tally.answered[idem] = answer["id"]
                    mine.append(answer["id"])
                    break
                if status is not None and status < 500:
                    break  # 429 (documented) or a client error (counted as an error)
                with tally.lock:
                    tally.retried += 1
                time.sleep(0.2)
            else:
                status = None
            if status not in (200, 201):
                with tally.lock:
                    tally.given_up.append(idem)
            continue
        if kind == "referral_read":
            path, headers = f"/referrals/{rng.choice(mine)}", {**auth, **proxy}
        else:
            path, headers = rng.choice(paths[kind]), proxy
        started = time.perf_counter()
        status, _ = request("GET", base + path, headers=headers)
        tally.record(kind, status, time.perf_counter() - started)


def record_paths(base: str) -> list[str]:
    """Record URLs of the seeded directory: services, organizations, programs."""
    paths = []
    for collection in ("services", "organizations", "programs"):
        status, page = request("GET", f"{base}/{collection}?per_page=50", headers={"X-Forwarded-For": "10.20.9.9"})
        if status != 200:
            sys.exit(f"bench/soak.py: GET /{collection} answered {status}")
        paths += [f"/{collection}/{item['id']}" for item in page["contents"]]
    return paths


# --------------------------------------------------------------------------- report


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))] if ordered else 0.0


def summarise(tally: Tally, stored: tuple, duration: float) -> dict:
    by_reason, by_key, ids = stored
    kinds = {}
    for kind in list(MIX) + ["all"]:
        lat = [v for k, vs in tally.latencies.items() for v in vs] if kind == "all" else tally.latencies.get(kind, [])
        statuses = (
            sum(tally.statuses.values(), collections.Counter())
            if kind == "all"
            else tally.statuses.get(kind, collections.Counter())
        )
        errors = sum(n for s, n in statuses.items() if not (s.isdigit() and (int(s) in OK or int(s) == 429)))
        kinds[kind] = {
            "requests": len(lat),
            "per_s": round(len(lat) / duration, 1),
            "statuses": dict(sorted(statuses.items())),
            "errors": errors,
            "429": statuses.get("429", 0),
            "p50_ms": round(percentile(lat, 0.50), 1),
            "p95_ms": round(percentile(lat, 0.95), 1),
            "p99_ms": round(percentile(lat, 0.99), 1),
        }
    lost = sorted(k for k, rid in tally.answered.items() if rid not in ids or by_key.get(k) != rid)
    duplicated = sorted(reason for reason, count in by_reason.items() if count > 1)
    stored_unanswered = [k for k in tally.given_up if k in by_key]
    return {
        "kinds": kinds,
        "referrals": {
            "answered_201": len(tally.answered),
            "stored": len(ids),
            "lost": len(lost),
            "duplicated": len(duplicated),
            "retried_requests": tally.retried,
            "given_up": len(tally.given_up),
            "stored_without_an_answer": len(stored_unanswered),
        },
        "errors": kinds["all"]["errors"],
    }


def report_lines(run: dict) -> list[str]:
    lines = [
        "| kind | requests | req/s | p50 ms | p95 ms | p99 ms | 429 | errors | statuses |",
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | --- |",
    ]
    for kind, k in run["summary"]["kinds"].items():
        statuses = ", ".join(f"{s}: {n}" for s, n in k["statuses"].items())
        lines.append(
            f"| {kind} | {k['requests']} | {k['per_s']} | {k['p50_ms']} | {k['p95_ms']} | {k['p99_ms']} "
            f"| {k['429']} | {k['errors']} | {statuses} |"
        )
    r = run["summary"]["referrals"]
    lines += [
        "",
        f"Referrals: {r['answered_201']} answered 201, {r['stored']} stored; lost {r['lost']}, duplicated "
        f"{r['duplicated']}; {r['retried_requests']} write requests retried with their key; {r['given_up']} "
        f"given up (429 or out of tries), of which {r['stored_without_an_answer']} stored.",
    ]
    return lines


def write_results_section(run: dict) -> None:
    m = run["machine"]
    body = [
        "<!-- soak -->",
        "## Soak",
        "",
        f"- date: {run['date']}; command: `{run['command']}`",
        f"- machine: {m['nproc']} cores, {m['memory']} RAM, {m['cpu']}; shared with other work at the time "
        f"(1-minute load average before / after: {run['loadavg'][0]:.2f} / {run['loadavg'][1]:.2f})",
        f"- database: {run['database']}",
        f"- server: {m['gunicorn']}, {run['workers']} sync workers; rate limiting on at the production defaults "
        f"({run['limits']}), counters in {run['limit_storage']}; clients: {run['concurrency']} threads on the same "
        f"machine for {run['duration']:g} s, one API key each, speaking for {len(ADDRESSES)} client addresses "
        "through one trusted proxy (`PROXY_HOPS=1`, `X-Forwarded-For`)",
        f"- mix: {', '.join(f'{k} {v}%' for k, v in MIX.items())}",
        "",
        *report_lines(run),
        "",
        f"Result: {run['verdict']}",
        "<!-- /soak -->",
    ]
    section = "\n".join(body) + "\n"
    text = RESULTS.read_text() if RESULTS.exists() else "# Benchmark results\n"
    start, end = text.find("<!-- soak -->"), text.find("<!-- /soak -->\n")
    if start >= 0 and end > start:
        text = text[:start] + section + text[end + len("<!-- /soak -->\n") :]
    else:
        text = text.rstrip("\n") + "\n\n" + section
    RESULTS.write_text(text)


def machine() -> dict:
    try:
        return search_bench.machine()
    except FileNotFoundError:  # it asks wrk for its version; the soak does not need wrk
        return {"nproc": len(os.sched_getaffinity(0)), "memory": "?", "cpu": "?", "gunicorn": "gunicorn"}


# --------------------------------------------------------------------------- main


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--engine", choices=["postgresql", "sqlite"], default="postgresql")
    parser.add_argument("--duration", type=float, default=60.0, help="seconds of traffic (60)")
    parser.add_argument("--concurrency", type=int, default=16, help="client threads (16)")
    parser.add_argument("--workers", type=int, default=len(os.sched_getaffinity(0)), help="gunicorn workers (cores)")
    parser.add_argument(
        "--pg-url", default=os.environ.get("BENCH_PG_URL", "postgresql://postgres@127.0.0.1:5432/postgres")
    )
    parser.add_argument("--redis-url", default=os.environ.get("BENCH_REDIS_URL", "redis://127.0.0.1:6379/0"))
    parser.add_argument("--no-results-md", action="store_true", help="leave bench/RESULTS.md alone")
    args = parser.parse_args(argv)

    # The server runs with the rate limits' production defaults, whatever this shell sets.
    for name in [name for name in os.environ if name.startswith("RATELIMIT_")]:
        del os.environ[name]
    from api.config import Config

    limits = Config()
    OUT.mkdir(exist_ok=True)
    database = Database(args.engine, args.pg_url)
    try:
        print(f"soak: preparing {args.engine} database", flush=True)
        keys, service_id = database.prepare(args.concurrency)
        redis = redis_url(args.redis_url)
        server = Server(database.url, args.workers, redis, OUT / f"soak-gunicorn-{args.engine}.log")
        base = server.base
        try:
            server.wait_ready()
            paths = {
                "search": search_bench.mixed(search_bench.query_set()),
                "list": LISTS,
                "record": record_paths(base),
            }
            tally = Tally()
            load_before = os.getloadavg()[0]
            print(f"soak: {args.concurrency} clients for {args.duration:g} s on {base}", flush=True)
            started = time.monotonic()
            deadline = started + args.duration
            threads = [
                threading.Thread(target=client_thread, args=(n, base, keys[n], service_id, paths, deadline, tally))
                for n in range(args.concurrency)
            ]
            for thread in threads:
                thread.start()
            for thread in threads:
                thread.join()
            elapsed = time.monotonic() - started
            load_after = os.getloadavg()[0]
        finally:
            server.stop()
        summary = summarise(tally, database.stored_referrals(), elapsed)
        description = database.describe()
    finally:
        database.drop()

    r = summary["referrals"]
    failed = summary["errors"] or r["lost"] or r["duplicated"]
    verdict = (
        f"FAILED: {summary['errors']} errors, {r['lost']} lost, {r['duplicated']} duplicated referrals"
        if failed
        else f"zero errors (429s: {summary['kinds']['all']['429']}, documented), "
        "zero lost and zero duplicated referrals"
    )
    run = {
        "date": search_bench.now_iso(),
        "engine": args.engine,
        "duration": args.duration,
        "concurrency": args.concurrency,
        "workers": args.workers,
        "database": description,
        "limits": f"public {limits.RATELIMIT_PUBLIC} per address, keyed {limits.RATELIMIT_KEYED} per client",
        "limit_storage": "Redis" if redis else "each worker's memory (Redis did not answer)",
        "command": "python bench/soak.py " + " ".join(argv if argv is not None else sys.argv[1:]),
        "machine": machine(),
        "loadavg": (load_before, load_after),
        "summary": summary,
        "verdict": verdict,
    }
    print("\n".join(report_lines(run)))
    print(verdict)
    stamp = run["date"].replace(":", "").replace("+0000", "Z")
    (OUT / f"soak-{args.engine}-{stamp}.json").write_text(json.dumps(run, indent=2) + "\n")
    if not args.no_results_md:
        write_results_section(run)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
