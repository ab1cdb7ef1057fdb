"""Datasette 0.65 as the comparison for the SQLite search benchmark (`bench/run.py --datasette`).

Datasette serves the SAME SQLite file the API was measured on (`bench/out/bench_<N>.db`),
read-only (`--immutable`), with no plugins installed in its virtualenv, and one canned query,
`search`, that ranks the project's FTS5 table `service_fts` with `bm25()` and the API's column
weights (`core.search.SQLITE_WEIGHTS`), joins the service's id, name and description, and
returns the first page of 20 (the API's page size in the benchmark) as JSON:
`/bench/search.json?q=...&_shape=array`. The words are escaped as Datasette's own table
search escapes them (`escape_fts`: each word a quoted term, all required).

Datasette is installed in its own virtualenv, `bench/.venv-datasette` (`make bench-datasette`),
since its dependencies need not agree with the project's pins.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path

from served import Served

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent
VENV = BENCH / ".venv-datasette"
DATASETTE = VENV / "bin" / "datasette"
VERSION = "0.65.5"
# The database file is served under this name (Datasette names it after the file's stem).
DB_NAME = "bench"
PER_PAGE = 20


def canned_sql() -> str:
    sys.path.insert(0, str(ROOT))
    from core.search import SQLITE_WEIGHTS

    return (
        "select s.id, s.name, s.description, "
        f"-bm25(service_fts, {SQLITE_WEIGHTS}) as score "
        "from service_fts "
        "join service_search ss on ss.id = service_fts.rowid "
        "join service s on s.id = ss.service_id "
        "where service_fts match escape_fts(:q) "
        f"order by score desc limit {PER_PAGE}"
    )


def ensure_installed() -> None:
    if DATASETTE.exists():
        return
    print(f"  installing datasette=={VERSION} into {VENV.relative_to(ROOT)}", flush=True)
    python = "/usr/bin/python3" if Path("/usr/bin/python3").exists() else "python3"
    subprocess.run([python, "-m", "venv", str(VENV)], check=True)
    subprocess.run([str(VENV / "bin" / "pip"), "install", "-q", f"datasette=={VERSION}"], check=True)


def version() -> str:
    out = subprocess.run([str(DATASETTE), "--version"], capture_output=True, text=True)
    return out.stdout.strip()


def paths_for(urls: list[str]) -> list[str]:
    """The Datasette URL for each API URL that carries search words (filters and distance are
    dropped: Datasette's canned query has the words only); URLs without words are left out."""
    out = []
    for url in urls:
        query = urllib.parse.parse_qs(urllib.parse.urlsplit(url).query)
        words = query.get("search")
        if words:
            out.append(f"/{DB_NAME}/search.json?" + urllib.parse.urlencode([("q", words[0]), ("_shape", "array")]))
    return out


class DatasetteServer(Served):
    """`datasette serve --immutable <db>`: one process (asyncio), SQL on its thread pool."""

    name = "datasette"

    def __init__(self, db_path: Path, port: int, workdir: Path, log: Path, sql_threads: int = 3):
        self.port = port
        self.base = f"http://127.0.0.1:{port}"
        self.log = log
        self.sql_threads = sql_threads
        # Served under the name DB_NAME: a symlink with that stem next to the metadata.
        workdir = workdir.resolve()
        workdir.mkdir(parents=True, exist_ok=True)
        link = workdir / f"{DB_NAME}.db"
        link.unlink(missing_ok=True)
        link.symlink_to(db_path.resolve())
        metadata = workdir / "metadata.json"
        metadata.write_text(
            json.dumps({"databases": {DB_NAME: {"queries": {"search": {"sql": canned_sql()}}}}}, indent=2) + "\n"
        )
        self.metadata = metadata
        cmd = [
            str(DATASETTE),
            "serve",
            "--immutable",
            str(link),
            "-m",
            str(metadata),
            "-h",
            "127.0.0.1",
            "-p",
            str(port),
            # the canned query's own time limit (1 s by default) would cut slow queries short
            "--setting",
            "sql_time_limit_ms",
            "30000",
            "--setting",
            "num_sql_threads",
            str(sql_threads),
        ]
        self.handle = log.open("w")
        env = {k: v for k, v in os.environ.items() if k not in ("VIRTUAL_ENV", "PYTHONPATH")}
        self.proc = subprocess.Popen(cmd, cwd=workdir, env=env, stdout=self.handle, stderr=subprocess.STDOUT)

    def wait_ready(self, timeout: float = 60) -> None:
        self.wait_answers("/-/versions.json", timeout)

    def plugins(self) -> list:
        with urllib.request.urlopen(self.base + "/-/plugins.json", timeout=10) as response:
            return json.loads(response.read())

    def check(self, paths: list[str]) -> list[dict]:
        """GET each path once: it must answer 200 with a JSON array. Returns rows per path."""
        out, failures = [], []
        for path in paths:
            try:
                with urllib.request.urlopen(self.base + path, timeout=60) as response:
                    rows = json.loads(response.read())
                out.append({"path": path, "rows": len(rows)})
            except (urllib.error.URLError, OSError, ValueError) as exc:
                body = exc.read()[:300] if isinstance(exc, urllib.error.HTTPError) else ""
                failures.append(f"  {path} -> {exc} {body!r}")
        if failures:
            self.stop()
            sys.exit("bench/datasette.py: these Datasette URLs failed:\n" + "\n".join(failures))
        return out

    def memory_mib(self) -> float:
        status = Path(f"/proc/{self.proc.pid}/status").read_text()
        for line in status.splitlines():
            if line.startswith("VmRSS:"):
                return round(int(line.split()[1]) / 1024, 1)
        return 0.0
