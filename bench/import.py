"""Time `flask hsds import` of a synthetic HSDS data package of N services, with its peak memory.

    python bench/import.py --services 50000 --engine sqlite [--seed 1] [--keep]

1. Writes bench/out/hsds_N/ (once per N and seed): datapackage.json and the CSV tables of the
   OCCH taxonomy plus N services made by bench/generate.py's Generator (organizations with
   locations, addresses and phones; services with areas and towns, languages, phones,
   categories, places and referral contact points), streamed to disk.
2. Makes an empty migrated database: bench/out/import_N.db (SQLite) or `bench_import_N` on the
   PostgreSQL server of TEST_DATABASE_URL (dropped first if it exists).
3. Runs `flask hsds import` on it in a child process and reports the wall time, the rate,
   the child's CPU time (user + system: what the import costs when the machine is shared) and
   its peak resident memory (ru_maxrss). The database is deleted afterwards unless
   --keep.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import platform
import resource
import subprocess
import sys
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from generate import SERVICES_PER_ORGANIZATION, Generator, absolute_sqlite_url  # noqa: E402  (bench/ is on sys.path)

from api.config import TEST_DATA_ENCRYPTION_KEY  # noqa: E402

OUT = ROOT / "bench" / "out"
PG_URL = os.environ.get("TEST_DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/test")


def write_package(folder: Path, services: int, seed: int) -> dict[str, int]:
    """Stream N synthetic services (and the seed taxonomy) into an HSDS data package."""
    from core.curation import ATTRIBUTE_NAMESPACE
    from core.hsds.export import describe_package
    from core.hsds.profile import PACKAGE_FILE, TABLES

    folder.mkdir(parents=True, exist_ok=True)
    handles = {spec.name: (folder / spec.path).open("w", newline="", encoding="utf-8") for spec in TABLES}
    writers = {}
    for spec in TABLES:
        writers[spec.name] = csv.DictWriter(
            handles[spec.name], fieldnames=[f.name for f in spec.fields], lineterminator="\r\n"
        )
        writers[spec.name].writeheader()
    counts = dict.fromkeys(writers, 0)

    def put(table: str, row: dict, **fixed) -> None:
        writers[table].writerow(
            {key: value for key, value in {**row, **fixed}.items() if key in writers[table].fieldnames}
        )
        counts[table] += 1

    taxonomy = json.loads((ROOT / "seed_data" / "taxonomy.json").read_text(encoding="utf-8"))
    for record in taxonomy["taxonomies"]:
        put("taxonomy", record)
    term_ids = {}
    for term in taxonomy["taxonomy_terms"]:
        hl7 = term.get("hl7_service_type") or {}
        put("taxonomy_term", term, hl7_service_type_code=hl7.get("code"), hl7_service_type_display=hl7.get("display"))
        term_ids[term["code"]] = term["id"]

    generator = Generator(seed)
    organization = org_town = None
    for index in range(services):
        if index % SERVICES_PER_ORGANIZATION == 0:
            organization, org_town = generator.organization(index // SERVICES_PER_ORGANIZATION)
            put("organization", organization)
            for phone in organization["phones"]:
                put("phone", phone, organization_id=organization["id"])
            for location in organization["locations"]:
                put("location", location, organization_id=organization["id"])
                for address in location["addresses"]:
                    put("address", address, location_id=location["id"])
                for phone in location["phones"]:
                    put("phone", phone, location_id=location["id"], organization_id=organization["id"])
        service = generator.service(index, organization, org_town)
        sid = service["id"]
        put("service", {**service, "accepts_referrals": "true" if service["accepts_referrals"] else "false"})
        for area in service["service_areas"]:
            put("service_area", {**area, "statewide": "true" if area.get("statewide") else "false"}, service_id=sid)
            for town in sorted(set(area.get("towns", []))):
                put("service_area_town", {"service_area_id": area["id"], "town": town})
        for language in service["languages"]:
            put("language", language, service_id=sid)
        for phone in service["phones"]:
            put("phone", phone, service_id=sid)
        for point in service["referral_contact_points"]:
            put("referral_contact_point", point, service_id=sid)
        for code in dict.fromkeys(service["categories"]):
            term_id = term_ids[code]
            put(
                "attribute",
                {
                    "id": str(uuid.uuid5(ATTRIBUTE_NAMESPACE, f"{sid}:{term_id}")),
                    "link_id": sid,
                    "link_type": "service_category",
                    "link_entity": "service",
                    "taxonomy_term_id": term_id,
                },
            )
        for location_id in dict.fromkeys(service["location_ids"]):
            put(
                "service_at_location",
                {
                    "id": str(uuid.uuid5(ATTRIBUTE_NAMESPACE, f"sal:{sid}:{location_id}")),
                    "service_id": sid,
                    "location_id": location_id,
                },
            )
    for handle in handles.values():
        handle.close()
    (folder / PACKAGE_FILE).write_text(json.dumps(describe_package(), indent=2) + "\n", encoding="utf-8")
    return counts


def empty_database(engine: str, services: int) -> tuple[str, callable]:

    if engine == "sqlite":
        path = OUT / f"import_{services}.db"
        path.unlink(missing_ok=True)
        return absolute_sqlite_url(f"sqlite:///{path}"), lambda: path.unlink(missing_ok=True)
    import psycopg
    from sqlalchemy.engine import make_url

    url = make_url(PG_URL)
    name = f"bench_import_{services}"

    def admin():
        return psycopg.connect(
            host=url.host,
            port=url.port or 5432,
            user=url.username,
            password=url.password,
            dbname=url.database,
            autocommit=True,
        )

    with admin() as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        conn.execute(f'CREATE DATABASE "{name}"')

    def drop():
        with admin() as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')

    return url.set(database=name).render_as_string(hide_password=False), drop


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--services", type=int, default=50_000)
    parser.add_argument("--engine", choices=["sqlite", "postgresql"], default="sqlite")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--keep", action="store_true", help="keep the database after the run")
    args = parser.parse_args(argv)

    folder = OUT / f"hsds_{args.services}_seed{args.seed}"
    if not (folder / "datapackage.json").exists():
        started = time.perf_counter()
        counts = write_package(folder, args.services, args.seed)
        print(f"wrote {folder} in {time.perf_counter() - started:.1f} s: {counts}", flush=True)
    size = sum(path.stat().st_size for path in folder.iterdir())

    url, drop = empty_database(args.engine, args.services)
    env = {
        **os.environ,
        "DATABASE_URL": url,
        "FLASK_APP": "wsgi",
        "RATELIMIT_ENABLED": "false",
        "DATA_ENCRYPTION_KEY": os.environ.get("DATA_ENCRYPTION_KEY") or TEST_DATA_ENCRYPTION_KEY,
    }
    flask = [sys.executable, "-m", "flask"]
    subprocess.run([*flask, "db", "upgrade"], cwd=ROOT, env=env, check=True, capture_output=True)
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    setup_cpu = before.ru_utime + before.ru_stime
    started = time.perf_counter()
    done = subprocess.run([*flask, "hsds", "import", str(folder)], cwd=ROOT, env=env, capture_output=True, text=True)
    elapsed = time.perf_counter() - started
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    peak_mib = usage.ru_maxrss / 1024
    cpu = usage.ru_utime + usage.ru_stime - setup_cpu
    load = os.getloadavg()[0]
    print(done.stdout[-2000:], done.stderr[-2000:], sep="\n")
    if not args.keep:
        drop()
    if done.returncode != 0:
        print(f"import failed with status {done.returncode}", file=sys.stderr)
        return done.returncode
    cores = os.cpu_count()
    print(
        f"- {datetime.now(UTC).isoformat(timespec='seconds')}, {args.engine}, {args.services:,} services "
        f"({size / 2**20:.0f} MiB of CSV): {elapsed:.1f} s, {args.services / elapsed:,.0f} services/s, "
        f"{cpu:.1f} s of CPU in the importing process, peak RSS {peak_mib:.0f} MiB; 1-minute load average at the end "
        f"{load:.1f}; {cores} cores, Python {platform.python_version()}, {platform.machine()}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
