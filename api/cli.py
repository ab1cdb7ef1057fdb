"""Command-line commands: `flask seed`, `flask clients`, `flask webhooks`, `flask hsds`,
`flask referrals`, `flask keys`, `flask search`."""

from __future__ import annotations

import json
from contextlib import contextmanager
from pathlib import Path

import click
from flask import Flask, current_app
from flask.cli import AppGroup
from marshmallow import ValidationError
from sqlalchemy.exc import OperationalError, ProgrammingError
from sqlalchemy.orm import Session

from api.common import session
from core import clients, context, curation, hsds, privacy, webhooks
from core.errors import DomainError
from models import crypto
from schemas.inputs import OrganizationIn, ProgramIn, ServiceIn, TaxonomyFileIn

SEED_DIR = Path(__file__).resolve().parent.parent / "seed_data"
NOT_MIGRATED = "The database has no tables yet: run `flask db upgrade` first (then `flask seed` for the directory)."


@contextmanager
def migrated():
    """A database without the project's tables is one line of advice, not a traceback
    (whose SQL would show the statement's parameters)."""
    try:
        yield
    except (OperationalError, ProgrammingError) as exc:
        message = str(exc.orig).lower()
        if "no such table" in message or ("relation" in message and "does not exist" in message):
            raise click.ClickException(NOT_MIGRATED) from None
        raise


class Commands(AppGroup):
    """The project's command groups: each command runs inside `migrated()`."""

    def invoke(self, ctx):
        with migrated():
            return super().invoke(ctx)


def load_directory(session: Session, seed_dir: Path) -> dict[str, int]:
    """Validate and upsert the seed files in `seed_dir`; the caller commits."""

    def read(name: str, key: str, schema) -> list[dict]:
        raw = json.loads((seed_dir / name).read_text(encoding="utf-8"))
        try:
            return schema.load(raw[key], many=True) if key else [schema.load(raw)]
        except ValidationError as exc:
            raise click.ClickException(f"{name}: invalid records: {json.dumps(exc.messages, default=str)}") from exc

    taxonomy = read("taxonomy.json", "", TaxonomyFileIn())[0]
    organizations = read("organizations.json", "organizations", OrganizationIn())
    programs = read("programs.json", "programs", ProgramIn())
    services = read("services.json", "services", ServiceIn())
    try:
        for record in taxonomy["taxonomies"]:
            curation.save_taxonomy(session, record)
        session.flush()
        for record in _parents_first(taxonomy["taxonomy_terms"], "parent_id"):
            curation.save_taxonomy_term(session, record)
            session.flush()
        for record in _parents_first(organizations, "parent_organization_id"):
            curation.save_organization(session, record)
            session.flush()
        for record in programs:
            curation.save_program(session, record)
        session.flush()
        for record in services:
            curation.save_service(session, record)
    except DomainError as exc:
        raise click.ClickException(f"{exc.message} {json.dumps(exc.errors)}") from exc
    return {
        "taxonomy_terms": len(taxonomy["taxonomy_terms"]),
        "organizations": len(organizations),
        "programs": len(programs),
        "services": len(services),
    }


def _parents_first(records: list[dict], parent_key: str) -> list[dict]:
    """Order records so that each comes after the record it names as parent."""
    by_id = {record["id"]: record for record in records}
    ordered: list[dict] = []
    seen: set = set()

    def visit(record: dict, path: tuple = ()) -> None:
        if record["id"] in seen:
            return
        if record["id"] in path:
            raise click.ClickException(f"{parent_key} forms a cycle.")
        parent = by_id.get(record.get(parent_key))
        if parent is not None:
            visit(parent, path + (record["id"],))
        seen.add(record["id"])
        ordered.append(record)

    for record in records:
        visit(record)
    return ordered


clients_cli = Commands("clients", help="API clients and their keys.")
webhooks_cli = Commands("webhooks", help="Webhook delivery.")
hsds_cli = Commands("hsds", help="HSDS 3.0 import and export.")


@clients_cli.command("create")
@click.option("--name", required=True, help="Who the key is for, e.g. 'Hartford Pediatrics'.")
@click.option("--scopes", required=True, help="Comma-separated: referrals:submit, referrals:manage, directory:write.")
@click.option("--program", "programs", multiple=True, help="Slug of a program this client manages (repeatable).")
@click.option(
    "--email", default=None, help="The client's contact e-mail (recorded as assurer_email when it verifies a service)."
)
def create_client_command(name: str, scopes: str, programs: tuple[str, ...], email: str | None) -> None:
    """Create a client; its secret key is printed once, on the last line."""
    try:
        new = clients.create_client(
            session(), name, [s.strip() for s in scopes.split(",") if s.strip()], list(programs), email=email
        )
        session().commit()
    except DomainError as exc:
        session().rollback()
        raise click.ClickException(exc.message) from exc
    click.echo(f"Created client {new.client.id} ({new.client.name}) with scopes {new.client.scopes}.")
    click.echo("The key is shown only now; store it safely:")
    click.echo(new.key)


@clients_cli.command("revoke")
@click.argument("client_id", type=click.UUID)
def revoke_client_command(client_id) -> None:
    """Revoke a client's key at once; its pending webhook deliveries are cancelled."""
    try:
        client = clients.revoke_client(session(), client_id)
        cancelled = webhooks.cancel_for_client(session(), client.id)
        session().commit()
    except DomainError as exc:
        raise click.ClickException(exc.message) from exc
    click.echo(f"Revoked {client.id} ({client.name}).")
    if cancelled:
        click.echo(f"Cancelled {cancelled} pending webhook deliveries.")


@clients_cli.command("list")
def list_clients_command() -> None:
    """List clients: id, name, scopes, programs, status (never keys)."""
    for client in clients.list_clients(session()):
        state = "revoked" if client.revoked_at else "active"
        programs = ",".join(sorted(str(p) for p in client.program_ids)) or "-"
        click.echo(f"{client.id}  {state:7}  {client.scopes:40}  {programs}  {client.name}")


@webhooks_cli.command("run")
@click.option("--once", is_flag=True, help="One pass over the due deliveries, then exit.")
def run_webhooks_command(once: bool) -> None:
    """Deliver due webhook events, retrying failures with exponential backoff.

    Different webhooks are served concurrently (WEBHOOK_POOL_SIZE threads); each attempt
    has one deadline (WEBHOOK_TIMEOUT_S)."""
    attempted = webhooks.run(lambda: session(), once=once, policy=webhooks.Policy.from_config(current_app.config))
    click.echo(f"Attempted {attempted} deliveries.")


@hsds_cli.command("import")
@click.argument("path", type=click.Path(exists=True, path_type=Path))
@click.option(
    "--skip-invalid", is_flag=True, help="Import the sound rows and report the others (default: all or nothing)."
)
def import_hsds_command(path: Path, skip_invalid: bool) -> None:
    """Import an HSDS data package folder, or a JSON / NDJSON file of full service records.

    Rows are upserted by id in one transaction. Every rejected row is reported as
    `FILE line N field F: reason`. Without --skip-invalid any fault means nothing is written
    and the exit status is 1."""
    try:
        report = hsds.import_path(session(), path, strict=not skip_invalid)
    except DomainError as exc:
        session().rollback()
        raise click.ClickException(exc.message) from exc
    except Exception:
        session().rollback()
        raise
    if report.written:
        session().commit()
    else:
        session().rollback()
    for line in report.lines():
        click.echo(line)
    if not report.written:
        raise SystemExit(1)


@hsds_cli.command("export")
@click.argument("folder", type=click.Path(file_okay=False, path_type=Path))
def export_hsds_command(folder: Path) -> None:
    """Write the whole directory as an HSDS 3.0 tabular data package (datapackage.json and CSV files)."""
    counts = hsds.export_package(session(), folder)
    click.echo(f"Exported to {folder}: " + ", ".join(f"{n} {name}" for name, n in counts.items()) + ".")


directory_cli = Commands("directory", help="Keeping the directory true.")


@directory_cli.command("stale")
@click.option(
    "--days", type=click.IntRange(min=0), default=180, show_default=True, help="Not verified in this many days."
)
def stale_command(days: int) -> None:
    """List the active services nobody has verified in DAYS days (never verified first)."""
    from datetime import timedelta

    from core import editing
    from models import utcnow

    found = editing.stale_services(session(), utcnow().date() - timedelta(days=days))
    for service in found:
        click.echo(
            f"{service.id}  {service.assured_date.isoformat() if service.assured_date else 'never':10}  {service.name}"
        )
    click.echo(f"{len(found)} services not verified in {days} days.")


referrals_cli = Commands("referrals", help="Erasing a family's data and the retention purge.")
keys_cli = Commands("keys", help="Data encryption keys.")


@referrals_cli.command("erase")
@click.argument("referral_id", type=click.UUID)
def erase_referral_command(referral_id) -> None:
    """Erase a referral's personal data (child, guardian, consent, referrer, reasons, outcome).

    Keeps its id, service, program, statuses, times, events and audit trail; records a
    `referral.erased` event and notifies webhook subscribers."""
    context.set_cli()
    try:
        referral = privacy.erase_referral(session(), referral_id)
        session().commit()
    except DomainError as exc:
        session().rollback()
        raise click.ClickException(exc.message) from exc
    click.echo(f"Erased referral {referral.id}.")


@referrals_cli.command("purge")
def purge_referrals_command() -> None:
    """Erase closed referrals (completed, rejected, cancelled, failed, entered-in-error) last
    changed more than REFERRAL_RETENTION_DAYS days ago."""
    context.set_cli()
    try:
        erased = privacy.purge(session(), current_app.config["REFERRAL_RETENTION_DAYS"])
    except DomainError as exc:
        session().rollback()
        raise click.ClickException(exc.message) from exc
    click.echo(
        f"Erased {len(erased)} closed referrals older than {current_app.config['REFERRAL_RETENTION_DAYS']} days."
    )


@keys_cli.command("rotate")
def rotate_keys_command() -> None:
    """Re-encrypt every stored personal field and webhook secret under DATA_ENCRYPTION_KEY.

    Keep the old key in DATA_ENCRYPTION_KEYS until this has run."""
    context.set_cli()
    counts = privacy.rotate_keys(session())
    click.echo(
        f"Re-encrypted under key {crypto.current_key_id()}: "
        + ", ".join(f"{n} {name}" for name, n in counts.items())
        + "."
    )


search_cli = AppGroup("search", help="The search index.")


@search_cli.command("reindex")
@click.option(
    "--ranking-only",
    is_flag=True,
    help="Only rebuild the ranking indexes from the search rows as they are (no row is written again).",
)
def reindex_search_command(ranking_only: bool) -> None:
    """Rebuild the search index from the directory: every service's search row is written
    again (the database's full-text index follows), then every process's ranking index
    (SEARCH_RANKER=tantivy) is told to rebuild at its next search. With --ranking-only the
    search rows are kept and only the ranking indexes are rebuilt from them (minutes instead of
    tens of minutes for a million services; the rows need writing again only after a change of
    the indexing code or the stemmer). Safe to run while the API serves; this command builds a
    ranking index itself to check it and reports its size."""
    import time

    from sqlalchemy import select

    from core import ranking, search
    from models import Service

    started = time.perf_counter()
    try:
        services = None if ranking_only else search.reindex(session(), select(Service.id))
        ranking.request_rebuild(session())
        session().commit()
    except Exception:
        session().rollback()
        raise
    written = time.perf_counter() - started
    state = ranking.ranker(session()).rebuild(session())
    session().rollback()
    rows = "Kept the search rows" if services is None else f"Reindexed {services} services in {written:.1f} s"
    click.echo(f"{rows}; ranking index of {state.documents} services built in {state.build_seconds:.1f} s.")


def register_commands(app: Flask) -> None:
    app.cli.add_command(search_cli)
    app.cli.add_command(directory_cli)
    app.cli.add_command(referrals_cli)
    app.cli.add_command(keys_cli)
    app.cli.add_command(clients_cli)
    app.cli.add_command(webhooks_cli)
    app.cli.add_command(hsds_cli)

    @app.cli.command("seed")
    @click.option("--dir", "seed_dir", type=click.Path(exists=True, file_okay=False, path_type=Path), default=SEED_DIR)
    def seed(seed_dir: Path) -> None:
        """Load the seed directory (idempotent: running it twice changes nothing)."""
        try:
            with migrated():
                counts = load_directory(session(), seed_dir)
                session().commit()
        except Exception:
            session().rollback()
            raise
        click.echo("Seeded " + ", ".join(f"{n} {name}" for name, n in counts.items()) + ".")
