"""HSDS 3.0 import and export: tabular data packages and files of full service records.

**Import** reads a tabular data package (a folder with `datapackage.json` and one CSV file per
table, as in HSDS's `examples/csv/`) or a JSON / NDJSON file of full service records (nested
records are flattened into the same table rows). Every row is checked: types, UUIDs, required
fields, vocabularies, lengths the database holds, coordinates in range, and every reference
(to a row of the import or of the database). Rows are upserted by id.

Tables are read one at a time, parents first (taxonomies, terms, organizations, programs,
locations, ... attributes), streamed in batches of `BATCH_SIZE` rows: a reference can then
only point at a table already read, so one pass suffices. Memory does not grow with the
import: the ids it accepted (which later rows may name) and the services it must reindex are
kept by the database, in a temporary table of the import's own transaction, and looked up a
batch at a time; what stays in memory is the current batch, the rows rejected so far and
one slug per program. Organizations and taxonomy terms, which may name a row of their own
table, are read in batches too: a row whose parent comes later in the file waits for it, in
the next batch. Search indexing runs once at the end, in batches.

`strict` (the default): any fault and nothing is written (the caller rolls back; writing
stops at the first fault, checking goes on to report every one). Otherwise the sound rows are
written and each row that refers to a rejected row is rejected too, naming it.

**Export** writes every stored row to a data package that imports back to the same records.

The caller owns the transaction: commit when `ImportReport.ok` (or not strict), else roll back.
"""
from __future__ import annotations

import csv
import json
import re
import uuid
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from datetime import date, datetime, time, timezone
from pathlib import Path
from typing import Any, Iterable, Iterator
from urllib.parse import urlsplit

from sqlalchemy import (
    Boolean,
    Column,
    Float,
    Integer,
    MetaData,
    SmallInteger,
    Table,
    Uuid,
    bindparam,
    delete,
    func,
    insert,
    literal,
    select,
    tuple_,
    update,
)
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session
from sqlalchemy.schema import CreateTable
from sqlalchemy.sql import Select

from core import search
from core.directory import term_and_descendants
from core.errors import InvalidData


def open_statuses() -> tuple[str, ...]:
    """The open referral statuses, from the lifecycle in core.referrals (imported late: the
    referral rules use the import's record writer)."""
    from core.referrals import OPEN

    return OPEN
from schemas.text import datetime_problem, text_problem
from models import (
    Address,
    Attribute,
    Contact,
    Language,
    Location,
    Organization,
    Phone,
    Program,
    Referral,
    ReferralContactPoint,
    Schedule,
    Service,
    ServiceArea,
    ServiceAreaTown,
    ServiceAtLocation,
    Taxonomy,
    TaxonomyTerm,
    UTCDateTime,
    utcnow,
)
from models.vocab import (
    CONTACT_AUDIENCES,
    CONTACT_CHANNELS,
    CONTACT_PURPOSES,
    LOCATION_TYPES,
    PHONE_TYPES,
    SERVICE_STATUSES,
)

BATCH_SIZE = 1000
IDS_PER_QUERY = 500
PACKAGE_FILE = "datapackage.json"
CSV_FIELD_LIMIT = 1 << 24

# --------------------------------------------------------------------------- the tables


@dataclass(frozen=True)
class Field:
    name: str
    kind: str  # uuid, string, number, integer, boolean, datetime
    required: bool = False
    max_length: int | None = None
    choices: tuple[str, ...] | None = None
    low: float | None = None
    high: float | None = None
    format: str | None = None  # email, uri, date, time
    ref: str | None = None  # the table an id refers to
    extension: bool = False  # not an HSDS field: this directory's own


@dataclass(frozen=True)
class TableSpec:
    name: str  # the HSDS resource name
    path: str  # the CSV file of the package
    model: type
    fields: tuple[Field, ...]
    extension: bool = False

    @property
    def table(self) -> Table:
        return self.model.__table__

    def field(self, name: str) -> Field | None:
        return next((f for f in self.fields if f.name == name), None)

    @property
    def names(self) -> frozenset[str]:
        return _NAMES.setdefault(self.name, frozenset(f.name for f in self.fields))


_NAMES: dict[str, frozenset[str]] = {}


# Rules beyond what the model's column types say (HSDS formats, vocabularies, ranges).
RULES: dict[str, dict[str, dict[str, Any]]] = {
    "taxonomy": {"uri": {"format": "uri"}},
    "taxonomy_term": {"term_uri": {"format": "uri"}},
    "organization": {"email": {"format": "email"}, "website": {"format": "uri"}},
    "program": {"slug": {"required": False}},
    "location": {
        "location_type": {"required": True, "choices": LOCATION_TYPES},
        "url": {"format": "uri"},
        "latitude": {"low": -90, "high": 90},
        "longitude": {"low": -180, "high": 180},
    },
    "address": {"address_type": {"required": True, "choices": LOCATION_TYPES}},
    "service": {
        "status": {"required": True, "choices": SERVICE_STATUSES},
        "url": {"format": "uri"},
        "email": {"format": "email"},
        "minimum_age": {"low": 0, "high": 130},
        "maximum_age": {"low": 0, "high": 130},
    },
    "contact": {"email": {"format": "email"}},
    "phone": {"type": {"choices": PHONE_TYPES}, "extension": {"low": 0}},
    "schedule": {
        **{name: {"format": "date"} for name in ("valid_from", "valid_to", "dtstart", "until")},
        "opens_at": {"format": "time"},
        "closes_at": {"format": "time"},
        "wkst": {"choices": ("MO", "TU", "WE", "TH", "FR", "SA", "SU")},
        "freq": {"choices": ("WEEKLY", "MONTHLY")},
        "interval": {"low": 0},
    },
    "referral_contact_point": {
        "channel": {"choices": CONTACT_CHANNELS},
        "audience": {"choices": CONTACT_AUDIENCES},
        "purpose": {"choices": CONTACT_PURPOSES},
    },
}
# Columns with a default are optional in the file, whatever the model says.
OPTIONAL = {"accepts_referrals", "statewide", "last_modified"}


def _spec(name: str, path: str, model: type, hsds: str, extensions: str = "", extension: bool = False) -> TableSpec:
    table = model.__table__
    fields = []
    for names, is_extension in ((hsds.split(), extension), (extensions.split(), True)):
        for column_name in names:
            column = table.c[column_name]
            kind = (
                "uuid" if isinstance(column.type, Uuid)
                else "boolean" if isinstance(column.type, Boolean)
                else "integer" if isinstance(column.type, Integer)
                else "number" if isinstance(column.type, Float)
                else "datetime" if isinstance(column.type, UTCDateTime)
                else "string"
            )
            refs = [fk.column.table.name for fk in column.foreign_keys]
            rules = {
                "required": not column.nullable and column_name not in OPTIONAL,
                "max_length": getattr(column.type, "length", None),
                "ref": refs[0] if refs else None,
                **RULES.get(name, {}).get(column_name, {}),
            }
            fields.append(Field(column_name, kind, extension=is_extension, **rules))
    return TableSpec(name, path, model, tuple(fields), extension)


# Parents first: a table refers only to tables above it (and to itself: organizations, terms).
TABLES: tuple[TableSpec, ...] = (
    _spec("taxonomy", "taxonomies.csv", Taxonomy, "id name description uri version"),
    _spec(
        "taxonomy_term", "taxonomy_terms.csv", TaxonomyTerm,
        "id code name description parent_id taxonomy language taxonomy_id term_uri",
        "hl7_service_type_code hl7_service_type_display",
    ),
    _spec(
        "organization", "organizations.csv", Organization,
        "id name alternate_name description email website parent_organization_id", "last_modified",
    ),
    _spec("program", "programs.csv", Program, "id organization_id name alternate_name description", "slug last_modified"),
    _spec(
        "location", "locations.csv", Location,
        "id location_type url organization_id name alternate_name description transportation latitude longitude",
    ),
    _spec(
        "address", "addresses.csv", Address,
        "id location_id attention address_1 address_2 city region state_province postal_code country address_type",
    ),
    _spec(
        "service", "services.csv", Service,
        "id organization_id program_id name alternate_name description url email status interpretation_services "
        "application_process fees_description eligibility_description minimum_age maximum_age alert last_modified",
        "accepts_referrals",
    ),
    _spec("service_area", "service_areas.csv", ServiceArea, "id service_id name description extent extent_type uri", "statewide"),
    _spec("service_area_town", "service_area_towns.csv", ServiceAreaTown, "service_area_id town", extension=True),
    _spec("service_at_location", "service_at_location.csv", ServiceAtLocation, "id service_id location_id description"),
    _spec(
        "contact", "contacts.csv", Contact,
        "id organization_id service_id service_at_location_id location_id name title department email",
    ),
    _spec(
        "phone", "phones.csv", Phone,
        "id location_id service_id organization_id contact_id service_at_location_id number extension type description",
    ),
    _spec("language", "languages.csv", Language, "id service_id location_id phone_id name code note"),
    _spec(
        "schedule", "schedules.csv", Schedule,
        "id service_id location_id service_at_location_id valid_from valid_to dtstart until wkst freq interval byday "
        "description opens_at closes_at attending_type notes",
    ),
    _spec("attribute", "attributes.csv", Attribute, "id link_id taxonomy_term_id link_type link_entity value"),
    _spec(
        "referral_contact_point", "referral_contact_points.csv", ReferralContactPoint,
        "id service_id channel value audience purpose instructions", extension=True,
    ),
)
BY_NAME = {spec.name: spec for spec in TABLES}
# Tables whose ids other rows may name (an attribute may name a row of any of them).
REFERABLE = {spec.name for spec in TABLES if spec.table.c.get("id") is not None} - {"attribute", "referral_contact_point"}
# HSDS tables this directory does not store: reported, never silently dropped.
NOT_STORED = (
    "funding", "cost_option", "required_document", "accessibility", "organization_identifier",
    "metadata", "meta_table_description", "url",
)


# --------------------------------------------------------------------------- reports


@dataclass(frozen=True)
class Fault:
    """Why one row was rejected: where (file, line, field) and what."""

    source: str
    line: int
    field: str
    message: str
    dependent: bool = False  # rejected because a row it names was rejected

    def __str__(self) -> str:
        return f"{self.source} line {self.line} field {self.field}: {self.message}"


@dataclass
class ImportReport:
    strict: bool
    faults: list[Fault] = field(default_factory=list)
    # (source, " column C" or " field F" or "", "values" / "records" / "rows") -> how many were read but not stored
    not_stored: Counter = field(default_factory=Counter)
    inserted: Counter = field(default_factory=Counter)
    updated: Counter = field(default_factory=Counter)
    unchanged: Counter = field(default_factory=Counter)
    reindexed: int = 0
    # Services with open referrals whose program, status or accepts_referrals the import changed:
    # (service id, name, the fields changed, how many open referrals)
    with_open_referrals: list[tuple[uuid.UUID, str, tuple[str, ...], int]] = field(default_factory=list)

    @property
    def rejected_rows(self) -> int:
        return len({(fault.source, fault.line) for fault in self.faults})

    @property
    def ok(self) -> bool:
        return not self.faults

    @property
    def written(self) -> bool:
        return not (self.strict and self.faults)

    def lines(self) -> list[str]:
        """The report, one line per fault (in strict mode the rows rejected only because a row
        they name was rejected are counted, not listed), then what was not stored, then totals."""
        shown = [f for f in self.faults if not (self.strict and f.dependent)]
        out = [str(fault) for fault in shown]
        hidden = len(self.faults) - len(shown)
        for (source, what, unit), count in sorted(self.not_stored.items()):
            out.append(f"{source}{what}: {count} {unit} not imported: not stored by this directory")
        if self.strict and self.faults:
            more = f" ({hidden} more faults in rows that name them)" if hidden else ""
            out.append(f"Nothing imported: {len(shown)} faults{more}.")
        else:
            tables = sorted(set(self.inserted) | set(self.updated) | set(self.unchanged), key=_table_order)
            parts = [
                f"{name}: {self.inserted[name]} new, {self.updated[name]} updated, {self.unchanged[name]} unchanged"
                for name in tables
            ]
            for service_id, name, changed, count in self.with_open_referrals:
                out.append(
                    f"service {service_id} ({name}): {', '.join(changed)} changed; {count} open referrals "
                    "stay with the program they were sent to"
                )
            rejected = f"; {self.rejected_rows} rows rejected" if self.faults else ""
            out.append("Imported " + ("; ".join(parts) or "nothing") + rejected + ".")
        return out


def _table_order(name: str) -> int:
    return [spec.name for spec in TABLES].index(name)


# --------------------------------------------------------------------------- values

EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
TRUE, FALSE = {"true", "1", "yes"}, {"false", "0", "no"}


def _key(value: uuid.UUID) -> int:
    """What the import remembers of an id: its first 64 bits (a collision between two different
    ids of one table has odds of about n / 2**60)."""
    return value.int >> 64


INT_LOW, INT_HIGH = -(2**31), 2**31 - 1


def parse_value(spec: Field, raw: Any) -> tuple[Any, str | None]:
    """(value, None) or (None, what is wrong). CSV gives strings; JSON gives typed values."""
    if raw is None or raw == "":
        return None, ("required" if spec.required else None)
    kind = spec.kind
    try:
        if kind == "uuid":
            if not isinstance(raw, str):
                return None, "not a UUID"
            value = uuid.UUID(raw)
        elif kind == "string":
            if isinstance(raw, (dict, list, bool)):
                return None, "not text"
            value = raw if isinstance(raw, str) else str(raw)
            problem = text_problem(value)
            if problem:
                return None, problem[0].lower() + problem[1:].rstrip(".")
        elif kind in ("number", "integer"):
            if isinstance(raw, bool) or not isinstance(raw, (str, int, float)):
                return None, f"not {'an integer' if kind == 'integer' else 'a number'}"
            number = float(raw)
            if number != number or number in (float("inf"), float("-inf")):
                return None, "not a number"
            if kind == "integer":
                if not number.is_integer():
                    return None, "not an integer"
                value = int(number)
                if not INT_LOW <= value <= INT_HIGH:  # the database's integer columns are 32-bit
                    return None, "outside the integer range"
            else:
                value = number
        elif kind == "boolean":
            if isinstance(raw, bool):
                value = raw
            elif isinstance(raw, str) and raw.strip().lower() in TRUE | FALSE:
                value = raw.strip().lower() in TRUE
            else:
                return None, "not true or false"
        elif kind == "datetime":
            if not isinstance(raw, str):
                return None, "not an ISO 8601 date-time"
            value = datetime.fromisoformat(raw)
            if value.tzinfo is None:
                value = value.replace(tzinfo=timezone.utc)
            if datetime_problem(value):
                return None, "outside the years 1900 to 9998"
        else:
            raise AssertionError(kind)
    except (ValueError, OverflowError):
        return None, {
            "uuid": "not a UUID", "number": "not a number", "integer": "not an integer",
            "datetime": "not an ISO 8601 date-time",
        }[kind]
    if spec.max_length is not None and len(value) > spec.max_length:
        return None, f"longer than {spec.max_length} characters"
    if spec.choices is not None and value not in spec.choices:
        return None, "not one of " + ", ".join(spec.choices)
    if spec.low is not None and value < spec.low or spec.high is not None and value > spec.high:
        return None, (
            f"must be between {spec.low:g} and {spec.high:g}" if spec.high is not None else f"must be at least {spec.low:g}"
        )
    if spec.format and not _formatted(spec.format, value):
        return None, {
            "email": "not an e-mail address", "uri": "not a URL", "date": "not an ISO 8601 date",
            "time": "not an ISO 8601 time",
        }[spec.format]
    return value, None


def _formatted(kind: str, value: str) -> bool:
    if kind == "email":
        return bool(EMAIL.match(value))
    if kind == "uri":
        parts = urlsplit(value)
        return bool(parts.scheme and (parts.netloc or parts.scheme in ("mailto", "tel", "urn")))
    try:
        (date if kind == "date" else time).fromisoformat(value)
    except ValueError:
        return False
    return True


# --------------------------------------------------------------------------- rows


@dataclass
class Row:
    source: str
    line: int
    raw: dict[str, Any]
    prefix: str = ""  # where the record sits in a nested JSON record, e.g. "phones[0]."
    values: dict[str, Any] = field(default_factory=dict)
    faults: list[Fault] = field(default_factory=list)

    def fault(self, name: str, message: str, dependent: bool = False) -> None:
        self.faults.append(Fault(self.source, self.line, self.prefix + name, message, dependent))


# Tables that may name a row of their own (a parent organization, a broader term).
SELF_REFERRING = ("organization", "taxonomy_term")

# What the import remembers between batches, kept by the database rather than in memory: a
# temporary table of the connection (SQLite keeps it in a temporary file behind a small page
# cache, PostgreSQL in temp_buffers and then on disk), emptied when an import starts and
# dropped with its transaction. `kind` says what an id is (see IdStore).
IMPORT_IDS = Table(
    "hsds_import_id",
    MetaData(),
    Column("kind", SmallInteger, primary_key=True),
    Column("id", Uuid, primary_key=True),
    Column("owner", Uuid),  # of an accepted program: its organization
    prefixes=["TEMPORARY"],
    sqlite_with_rowid=False,
    postgresql_on_commit="DROP",
)


class IdStore:
    """The ids an import accepted, table by table, and the services it must reindex."""

    ACCEPTED = {spec.name: index for index, spec in enumerate(TABLES)}  # a row of that table was accepted
    REINDEX = 100  # a service to reindex (written, or a row of it written)
    CHANGED = {name: 200 + index for name, index in ACCEPTED.items()}  # an existing row was updated
    FOUND = 300  # + n: services reached through updated rows (see Importer.finish)

    def __init__(self, session: Session) -> None:
        self.session = session
        session.execute(CreateTable(IMPORT_IDS, if_not_exists=True))
        session.execute(delete(IMPORT_IDS))
        dialect = session.get_bind().dialect.name
        self._insert = (postgresql.insert if dialect == "postgresql" else sqlite.insert)(IMPORT_IDS).on_conflict_do_nothing()

    def add(self, kind: int, ids: Iterable[uuid.UUID | None], owners: dict[uuid.UUID, uuid.UUID] | None = None) -> None:
        rows = [{"kind": kind, "id": value, "owner": (owners or {}).get(value)} for value in set(ids) - {None}]
        for start in range(0, len(rows), BATCH_SIZE):
            self.session.execute(self._insert, rows[start : start + BATCH_SIZE])

    def known(self, kinds: Iterable[int], ids: Iterable[uuid.UUID]) -> set[uuid.UUID]:
        """Which of `ids` are held under one of `kinds`."""
        kinds = list(kinds)
        return {
            found
            for chunk in _chunks(ids)
            for found in self.session.scalars(
                select(IMPORT_IDS.c.id).where(IMPORT_IDS.c.kind.in_(kinds), IMPORT_IDS.c.id.in_(chunk))
            )
        }

    def owners(self, kind: int, ids: Iterable[uuid.UUID]) -> dict[uuid.UUID, uuid.UUID]:
        found: dict[uuid.UUID, uuid.UUID] = {}
        for chunk in _chunks(ids):
            found.update(
                self.session.execute(
                    select(IMPORT_IDS.c.id, IMPORT_IDS.c.owner).where(IMPORT_IDS.c.kind == kind, IMPORT_IDS.c.id.in_(chunk))
                ).all()
            )
        return found

    def of_kind(self, kinds: Iterable[int]) -> Select:
        return select(IMPORT_IDS.c.id).where(IMPORT_IDS.c.kind.in_(list(kinds)))

    def pages(self, kinds: Iterable[int], size: int = BATCH_SIZE) -> Iterator[list[uuid.UUID]]:
        """The distinct ids held under `kinds`, in order, `size` at a time."""
        kinds = list(kinds)
        last = None
        while True:
            query = select(IMPORT_IDS.c.id).distinct().where(IMPORT_IDS.c.kind.in_(kinds))
            if last is not None:
                query = query.where(IMPORT_IDS.c.id > last)
            page = list(self.session.scalars(query.order_by(IMPORT_IDS.c.id).limit(size)))
            if not page:
                return
            yield page
            last = page[-1]

    def add_found(self, kind: int, query: Select) -> None:
        """Hold under `kind` the ids a query of one column finds (in the database, not here)."""
        found = query.subquery().c[0]
        self.session.execute(
            insert(IMPORT_IDS).from_select(
                ["kind", "id"], select(literal(kind, SmallInteger), found).where(found.is_not(None)).distinct()
            )
        )


class Importer:
    """Checks rows table by table, parents first, and writes the sound ones."""

    def __init__(self, session: Session, strict: bool = True) -> None:
        self.session = session
        self.report = ImportReport(strict=strict)
        self.ids = IdStore(session)
        self.rejected: dict[str, dict[int, str]] = defaultdict(dict)
        self.taxonomy_names: dict[int, str] = {}
        self.slugs: dict[str, int] = {}
        self.term_codes: dict[tuple[int | None, str], int] = {}
        self.now = utcnow()
        self.referral_fields_changed: dict[uuid.UUID, tuple[str, tuple[str, ...]]] = {}

    @property
    def writing(self) -> bool:
        return self.report.written

    # ---- checking

    def add(self, spec: TableSpec, rows: list[Row], repeats: bool = False, more: bool = False) -> list[Row]:
        """Check a batch of rows of one table and write the sound ones. `repeats`: a row whose
        id was already taken is passed over (the same organization nested in many records).
        `more`: more batches of this table follow; a row naming a parent of its own table that
        is not known yet is returned, not checked, to be given again with the next batch."""
        waiting: list[Row] = []
        if more and spec.name in SELF_REFERRING:
            rows, waiting = self._wait_for_parents(spec, rows)
        if repeats:
            firsts: dict[Any, Row] = {}
            for row in rows:
                raw_id = row.raw.get("id") if "id" in spec.table.c else (row.raw.get("service_area_id"), row.raw.get("town"))
                key = repr(raw_id) if raw_id is not None else id(row)
                firsts.setdefault(key, row)
            seen = self._seen(spec, firsts.values())
            rows = [row for row in firsts.values() if id(row) not in seen]
        for row in rows:
            self._parse(spec, row)
        referable = spec.name in REFERABLE
        taken = (
            self.ids.known([IdStore.ACCEPTED[spec.name]], {row.values["id"] for row in rows if "id" in row.values})
            if referable else set()
        )
        self._check_references(spec, rows, taken)
        self._check_table_rules(spec, rows)
        if spec.name in SELF_REFERRING:
            rows = self._parents_first(spec, rows)
        sound = []
        accepted: set[uuid.UUID] = set()
        for row in rows:
            row_id = row.values.get("id")
            if row.faults:
                self.report.faults.extend(row.faults)
                if row_id is not None and row_id not in taken and row_id not in accepted:
                    self.rejected[spec.name][_key(row_id)] = f"{row.source} line {row.line}"
            else:
                if row_id is not None and referable:
                    accepted.add(row_id)
                sound.append(row)
        owners = {row.values["id"]: row.values["organization_id"] for row in sound} if spec.name == "program" else None
        self.ids.add(IdStore.ACCEPTED[spec.name], accepted, owners)
        if sound and self.writing:
            self._write(spec, sound)
        return waiting

    def _seen(self, spec: TableSpec, rows: Iterable[Row]) -> set[int]:
        """Python ids of the rows whose id an earlier batch accepted or rejected."""
        parsed: dict[int, uuid.UUID] = {}
        for row in rows:
            try:
                parsed[id(row)] = uuid.UUID(str(row.raw.get("id")))
            except ValueError:
                continue
        accepted = self.ids.known([IdStore.ACCEPTED[spec.name]], parsed.values()) if spec.name in REFERABLE else set()
        rejected = self.rejected[spec.name]
        return {key for key, value in parsed.items() if value in accepted or _key(value) in rejected}

    def _wait_for_parents(self, spec: TableSpec, rows: list[Row]) -> tuple[list[Row], list[Row]]:
        """(rows to check now, rows whose parent, or a parent's parent in the batch, names a row
        not read yet: neither in this batch, nor accepted or rejected before, nor stored)."""
        id_field = spec.field("id")
        parent_field = next(f for f in spec.fields if f.ref == spec.name)
        quiet = lambda f, row: parse_value(f, row.raw.get(f.name))[0]  # noqa: E731 (faults come later)
        by_id: dict[uuid.UUID, Row] = {}
        parents: dict[int, uuid.UUID | None] = {}
        for row in rows:
            row_id = quiet(id_field, row)
            if row_id is not None:
                by_id.setdefault(row_id, row)
            parents[id(row)] = quiet(parent_field, row)
        outside = {parent for parent in parents.values() if parent is not None and parent not in by_id}
        known = self.ids.known([IdStore.ACCEPTED[spec.name]], outside)
        known |= {parent for parent in outside - known if _key(parent) in self.rejected[spec.name]}
        known |= _existing_ids(self.session, spec.table, outside - known)
        unknown = outside - known
        if not unknown:
            return rows, []

        def waits(row: Row) -> bool:
            visited = {id(row)}
            parent = parents[id(row)]
            while parent is not None:
                if parent in unknown:
                    return True
                above = by_id.get(parent)
                if above is None or id(above) in visited:
                    return False
                visited.add(id(above))
                parent = parents[id(above)]
            return False

        now, later = [], []
        for row in rows:
            (later if waits(row) else now).append(row)
        return now, later

    def _parse(self, spec: TableSpec, row: Row) -> None:
        names = spec.names
        for name, raw in row.raw.items():
            if name not in names and raw not in (None, "", [], {}):
                what = f" field {row.prefix}{name}" if row.source.endswith(("json", "jsonl")) else f" column {name}"
                self.report.not_stored[(row.source, what, "values")] += 1
        for spec_field in spec.fields:
            value, problem = parse_value(spec_field, row.raw.get(spec_field.name))
            if problem:
                row.fault(spec_field.name, problem)
            elif value is not None:
                row.values[spec_field.name] = value
        low, high = row.values.get("minimum_age"), row.values.get("maximum_age")
        if low is not None and high is not None and low > high:
            row.fault("maximum_age", "below minimum_age")

    def _check_references(self, spec: TableSpec, rows: list[Row], taken: set[uuid.UUID]) -> None:
        """`taken`: the ids of the batch that earlier batches accepted."""
        batch_ids = {row.values["id"] for row in rows if "id" in row.values}
        references: list[tuple[Row, str, tuple[str, ...], uuid.UUID]] = []
        ids_in_batch: dict[uuid.UUID, int] = {}
        for row in rows:
            row_id = row.values.get("id")
            if row_id is not None:
                if row_id in taken or row_id in ids_in_batch:
                    first = f" (line {ids_in_batch[row_id]})" if row_id in ids_in_batch else ""
                    row.fault("id", f"given twice in this import{first}")
                ids_in_batch.setdefault(row_id, row.line)
            for spec_field in spec.fields:
                target = spec_field.ref
                value = row.values.get(spec_field.name)
                if target is None or value is None:
                    continue
                if target == spec.name and value in batch_ids:
                    continue  # resolved with the whole batch (_parents_first)
                references.append((row, spec_field.name, (target,), value))
            if spec.name == "attribute" and "link_id" in row.values:
                entity = row.values.get("link_entity")
                targets = (entity,) if entity in REFERABLE else tuple(sorted(REFERABLE))
                references.append((row, "link_id", targets, row.values["link_id"]))
        wanted: dict[tuple[str, ...], set[uuid.UUID]] = defaultdict(set)
        for _, _, targets, value in references:
            wanted[targets].add(value)
        accepted = {
            targets: self.ids.known([IdStore.ACCEPTED[target] for target in targets], values)
            for targets, values in wanted.items()
        }
        unresolved: dict[str, list[tuple[Row, str, uuid.UUID]]] = defaultdict(list)
        for row, name, targets, value in references:
            if value in accepted[targets]:
                continue
            key = _key(value)
            where = next(
                ((target, self.rejected[target][key]) for target in targets if key in self.rejected[target]), None
            )
            if where is not None:
                row.fault(name, f"the {where[0]} it names was rejected ({where[1]})", dependent=True)
            else:
                unresolved[",".join(targets)].append((row, name, value))
        self._check_in_database(unresolved)

    def _check_in_database(self, unresolved: dict[str, list[tuple[Row, str, uuid.UUID]]]) -> None:
        for targets, wanted in unresolved.items():
            names = targets.split(",")
            ids = {value for _, _, value in wanted}
            found: set[uuid.UUID] = set()
            for target in names:
                found |= _existing_ids(self.session, BY_NAME[target].table, ids - found)
            label = names[0] if len(names) == 1 else "record"
            for row, name, value in wanted:
                if value not in found:
                    row.fault(name, f"no {label} has this id")

    def _check_table_rules(self, spec: TableSpec, rows: list[Row]) -> None:
        if spec.name == "program":
            self._check_slugs(rows)
        elif spec.name == "service":
            self._check_programs_of_services(rows)
        elif spec.name == "taxonomy":
            for row in rows:
                if not row.faults:
                    self.taxonomy_names[_key(row.values["id"])] = row.values["name"]
        elif spec.name == "taxonomy_term":
            self._check_term_codes(rows)

    def _check_slugs(self, rows: list[Row]) -> None:
        """A program's slug is this directory's readable key: taken from the file or made from
        the name; a slug given twice, or held by another program, is a fault."""
        sound = [row for row in rows if not row.faults]
        for row in sound:
            if "slug" not in row.values:
                row.values["slug"] = _slugify(row.values["name"])
                row.values["slug_made"] = True
        held = dict(
            self.session.execute(
                select(Program.slug, Program.id).where(Program.slug.in_({row.values["slug"] for row in sound}))
            ).all()
        ) if sound else {}
        for row in sound:
            slug, key = row.values["slug"], _key(row.values["id"])
            owner = self.slugs.get(slug, _key(held[slug]) if slug in held else None)
            if owner is not None and owner != key and row.values.pop("slug_made", False):
                base, n = slug, 2
                while owner is not None and owner != key:
                    slug = f"{base[:95]}-{n}"
                    n += 1
                    owner = self.slugs.get(slug) or (
                        _key(found) if (found := self.session.scalar(select(Program.id).where(Program.slug == slug))) else None
                    )
                row.values["slug"] = slug
            elif owner is not None and owner != key:
                row.fault("slug", "used by another program")
                continue
            row.values.pop("slug_made", None)
            self.slugs[slug] = key

    def _check_programs_of_services(self, rows: list[Row]) -> None:
        wanted = {row.values["program_id"] for row in rows if row.values.get("program_id")}
        owners = self.ids.owners(IdStore.ACCEPTED["program"], wanted)  # programs of this import
        for chunk in _chunks(wanted - set(owners)):
            owners.update(self.session.execute(select(Program.id, Program.organization_id).where(Program.id.in_(chunk))).all())
        for row in rows:
            program_id, organization_id = row.values.get("program_id"), row.values.get("organization_id")
            if program_id is None or organization_id is None or any(f.field.endswith("program_id") for f in row.faults):
                continue
            owner = owners.get(program_id)
            if owner is not None and owner != organization_id:
                row.fault("program_id", "a program of another organization")

    def _check_term_codes(self, rows: list[Row]) -> None:
        """Codes are unique within a taxonomy; a term with no taxonomy name gets its taxonomy's."""
        for row in rows:
            if row.faults:
                continue
            taxonomy_id, code = row.values.get("taxonomy_id"), row.values.get("code")
            if taxonomy_id is not None and "taxonomy" not in row.values:
                name = self.taxonomy_names.get(_key(taxonomy_id)) or self.session.scalar(
                    select(Taxonomy.name).where(Taxonomy.id == taxonomy_id)
                )
                if name:
                    row.values["taxonomy"] = name
            if code is None:
                continue
            scope = (_key(taxonomy_id) if taxonomy_id else None, code)
            owner = self.term_codes.get(scope)
            if owner is None:
                found = self.session.scalar(
                    select(TaxonomyTerm.id).where(TaxonomyTerm.taxonomy_id == taxonomy_id, TaxonomyTerm.code == code)
                )
                owner = _key(found) if found else None
            if owner is not None and owner != _key(row.values["id"]):
                row.fault("code", "used by another term of this taxonomy")
            else:
                self.term_codes[scope] = _key(row.values["id"])

    def _parents_first(self, spec: TableSpec, rows: list[Row]) -> list[Row]:
        """Order rows that name a parent of their own table after it; a row whose parent in the
        batch is rejected, or that is its own ancestor, is rejected."""
        parent_field = next(f.name for f in spec.fields if f.ref == spec.name)
        by_key = {_key(row.values["id"]): row for row in rows if "id" in row.values}
        ordered: list[Row] = []
        state: dict[int, str] = {}

        def visit(row: Row) -> bool:
            key = _key(row.values["id"]) if "id" in row.values else None
            if key is not None and state.get(key) == "done":
                return not row.faults
            parent_id = row.values.get(parent_field)
            parent = by_key.get(_key(parent_id)) if parent_id is not None else None
            if parent is not None and parent is not row:
                if key is not None:
                    state[key] = "visiting"
                parent_key = _key(parent.values["id"])
                if state.get(parent_key) == "visiting":
                    row.fault(parent_field, "makes a cycle of parents")
                elif not visit(parent) and not row.faults:
                    row.fault(parent_field, f"the {spec.name} it names was rejected ({parent.source} line {parent.line})", True)
            elif parent is row:
                row.fault(parent_field, "names the row itself")
            if key is not None:
                state[key] = "done"
            ordered.append(row)
            return not row.faults

        for row in rows:
            if "id" not in row.values or state.get(_key(row.values["id"])) != "done":
                visit(row)
        return ordered

    # ---- writing

    def _write(self, spec: TableSpec, rows: list[Row]) -> None:
        table = spec.table
        if spec.name == "service_area_town":
            self._write_towns(rows)
            return
        existing = {}
        ids = [row.values["id"] for row in rows]
        for chunk in _chunks(ids):
            existing.update((found.id, found) for found in self.session.execute(select(table).where(table.c.id.in_(chunk))))
        new, changed = [], []
        touched: dict[int, list[uuid.UUID]] = defaultdict(list)
        stamped = "last_modified" in table.c
        for row in rows:
            values = {column.key: row.values.get(column.key) for column in table.columns}
            for column in table.columns:
                if values[column.key] is None and not column.nullable and column.default is not None and column.default.is_scalar:
                    values[column.key] = column.default.arg
            given_stamp = row.values.get("last_modified")
            before = existing.get(row.values["id"])
            if before is None:
                if stamped:
                    values["last_modified"] = given_stamp or self.now
                new.append(values)
            else:
                old = before._mapping
                # A column the file does not carry keeps what is stored: an HSDS file need not
                # have this directory's own columns (a program's slug, accepts_referrals, ...).
                values = {key: value if key == "id" or key in row.raw else old[key] for key, value in values.items()}
                differs = any(values[key] != old[key] for key in values if key not in ("id", "last_modified"))
                if stamped:
                    values["last_modified"] = given_stamp or (self.now if differs else old["last_modified"])
                    differs = differs or values["last_modified"] != old["last_modified"]
                if differs:
                    changed.append(values)
                    if spec.name == "service":
                        moved = tuple(k for k in ("program_id", "status", "accepts_referrals") if values[k] != old[k])
                        if moved:
                            self.referral_fields_changed[values["id"]] = (values["name"], moved)
                else:
                    self.report.unchanged[spec.name] += 1
                    continue
            self._touch(spec, row.values, before is None, touched)
        if new:
            self.session.execute(insert(table), new)
        if changed:
            columns = [column.key for column in table.columns if column.key != "id"]
            statement = update(table).where(table.c.id == bindparam("old_id")).values(
                {key: bindparam(f"new_{key}") for key in columns}
            )
            self.session.execute(
                statement, [{"old_id": values["id"], **{f"new_{key}": values[key] for key in columns}} for values in changed]
            )
        self.report.inserted[spec.name] += len(new)
        self.report.updated[spec.name] += len(changed)
        for kind, ids in touched.items():
            self.ids.add(kind, ids)

    def _write_towns(self, rows: list[Row]) -> None:
        pairs = {(row.values["service_area_id"], row.values["town"]) for row in rows}
        table = ServiceAreaTown.__table__
        present: set = set()
        for chunk in _chunks(sorted(pairs)):
            present.update(
                tuple(found)
                for found in self.session.execute(
                    select(table.c.service_area_id, table.c.town).where(tuple_(table.c.service_area_id, table.c.town).in_(chunk))
                )
            )
        new = sorted(pairs - present)
        if new:
            self.session.execute(insert(table), [{"service_area_id": a, "town": t} for a, t in new])
            self.ids.add(IdStore.CHANGED["service_area"], (a for a, _ in new))
        self.report.inserted["service_area_town"] += len(new)
        self.report.unchanged["service_area_town"] += len(rows) - len(new)

    def _touch(self, spec: TableSpec, values: dict, is_new: bool, touched: dict[int, list[uuid.UUID]]) -> None:
        """Note what search must reindex: the service, or the rows whose change reaches it."""
        name = spec.name
        if name == "service":
            touched[IdStore.REINDEX].append(values["id"])
        elif name in ("service_area", "language", "service_at_location") and values.get("service_id"):
            touched[IdStore.REINDEX].append(values["service_id"])
        elif name == "attribute":
            if values.get("link_entity") == "service":
                touched[IdStore.REINDEX].append(values["link_id"])
        elif name == "address" and values.get("location_id"):
            # A location without coordinates is placed by its address's ZIP code.
            touched[IdStore.CHANGED["location"]].append(values["location_id"])
        elif not is_new and name in ("organization", "program", "location", "taxonomy_term"):
            touched[IdStore.CHANGED[name]].append(values["id"])

    def finish(self) -> ImportReport:
        """Reindex for search every service the import changed, directly or through a row it
        names, a batch at a time (the ids are gathered in the import's temporary table)."""
        if not self.writing:
            return self.report
        session, ids = self.session, self.ids
        session.flush()
        lookups = [
            ("organization", Service.id, Service.organization_id),
            ("program", Service.id, Service.program_id),
            ("location", ServiceAtLocation.service_id, ServiceAtLocation.location_id),
            ("service_area", ServiceArea.service_id, ServiceArea.id),
        ]
        reindex = [IdStore.REINDEX]
        for number, (name, column, by) in enumerate(lookups, start=1):
            reindex.append(IdStore.FOUND + number)
            ids.add_found(reindex[-1], select(column).where(by.in_(ids.of_kind([IdStore.CHANGED[name]]))))
        below = term_and_descendants(ids.of_kind([IdStore.CHANGED["taxonomy_term"]]))
        reindex.append(IdStore.FOUND)
        ids.add_found(
            reindex[-1],
            select(Attribute.link_id).where(Attribute.link_entity == "service", Attribute.taxonomy_term_id.in_(below)),
        )
        self.report.reindexed = sum(search.index_services(session, page) for page in ids.pages(reindex))
        self._report_open_referrals()
        return self.report

    def _report_open_referrals(self) -> None:
        watched = self.referral_fields_changed
        counts: dict[uuid.UUID, int] = {}
        for chunk in _chunks(list(watched)):
            counts.update(
                self.session.execute(
                    select(Referral.service_id, func.count())
                    .where(Referral.service_id.in_(chunk), Referral.status.in_(open_statuses()))
                    .group_by(Referral.service_id)
                ).all()
            )
        self.report.with_open_referrals = [
            (service_id, watched[service_id][0], watched[service_id][1], counts[service_id])
            for service_id in sorted(counts, key=str)
        ]


def _slugify(name: str) -> str:
    slug = re.sub(r"[^a-z0-9]+", "-", name.lower()).strip("-")[:100].strip("-")
    return slug or "program"


def _existing_ids(session: Session, table: Table, ids: Iterable[uuid.UUID]) -> set[uuid.UUID]:
    return {found for chunk in _chunks(ids) for found in session.scalars(select(table.c.id).where(table.c.id.in_(chunk)))}


def _chunks(values: Iterable[Any]) -> Iterator[list[Any]]:
    values = list(values)
    for start in range(0, len(values), IDS_PER_QUERY):
        yield values[start : start + IDS_PER_QUERY]


# --------------------------------------------------------------------------- reading


def import_path(session: Session, path: Path, strict: bool = True) -> ImportReport:
    """Import a data package folder (or its datapackage.json), or a .json / .ndjson / .jsonl
    file of full service records. Raises InvalidData when the input cannot be read at all."""
    path = Path(path)
    if path.is_dir() or path.name == PACKAGE_FILE:
        return import_package(session, path if path.is_dir() else path.parent, strict)
    if not path.is_file():
        raise InvalidData(f"{path.name}: no such file or folder.")
    return import_records(session, path, strict)


def import_package(session: Session, folder: Path, strict: bool = True) -> ImportReport:
    """Import an HSDS tabular data package, table by table, parents first."""
    descriptor = folder / PACKAGE_FILE
    try:
        package = json.loads(descriptor.read_text(encoding="utf-8"))
        resources = {resource["name"]: resource["path"] for resource in package["resources"]}
    except FileNotFoundError as exc:
        raise InvalidData(f"{folder.name}: no {PACKAGE_FILE} in this folder.") from exc
    except (ValueError, KeyError, TypeError) as exc:
        raise InvalidData(f"{PACKAGE_FILE}: not a data package (a JSON object with named resources and paths).") from exc
    for name, relative in resources.items():
        _check_inside(folder, name, relative)
    importer = Importer(session, strict)
    for name, relative in resources.items():
        if name not in BY_NAME:
            rows = sum(1 for _ in _csv_rows(folder / relative)) if (folder / relative).is_file() else 0
            importer.report.not_stored[(str(relative), "", "rows")] += rows
    for spec in TABLES:
        relative = resources.get(spec.name)
        if relative is None:
            continue
        csv_path = folder / relative
        if not csv_path.is_file():
            raise InvalidData(f"{relative}: named in {PACKAGE_FILE} but not in the folder.")
        waiting: list[Row] = []  # rows whose parent (of the same table) is further on
        batch: list[Row] = []
        for line, raw in _csv_rows(csv_path):
            batch.append(Row(str(relative), line, raw))
            if len(batch) == BATCH_SIZE:
                waiting = importer.add(spec, waiting + batch, more=True)
                batch = []
        if batch or waiting:
            importer.add(spec, waiting + batch)
    return importer.finish()


def _check_inside(folder: Path, name: Any, relative: Any) -> None:
    """A resource path is a relative path to a file inside the package folder: not absolute,
    no `..` out of it (symbolic links included), nothing but text."""
    label = f"{PACKAGE_FILE} resource {name}" if isinstance(name, str) and not text_problem(name) else PACKAGE_FILE
    if not isinstance(relative, str) or not relative or text_problem(relative):
        raise InvalidData(f"{label}: the path is not a file name.")
    path = Path(relative)
    if path.is_absolute() or relative.startswith(("/", "\\")) or ":" in path.parts[0]:
        raise InvalidData(f"{label}: the path is absolute; give a path inside the package folder.")
    root = folder.resolve()
    target = (folder / path).resolve()
    if target != root and root not in target.parents:
        raise InvalidData(f"{label}: the path leaves the package folder.")


def _csv_rows(path: Path) -> Iterator[tuple[int, dict[str, str]]]:
    """(physical line number where the row starts, the header line being 1; the row)."""
    csv.field_size_limit(CSV_FIELD_LIMIT)
    line = 1
    with path.open(newline="", encoding="utf-8-sig") as handle:
        try:
            reader = csv.DictReader(handle)
            reader.fieldnames  # reads the header
            line = reader.line_num + 1
            for raw in reader:
                yield line, {key: value for key, value in raw.items() if key is not None}
                line = reader.line_num + 1
        except UnicodeDecodeError:
            # The text is decoded in blocks ahead of the CSV reader: no line can be named.
            raise InvalidData(f"{path.name}: not UTF-8 text.") from None
        except csv.Error as exc:  # the message names the problem (a NUL, a field too large), not the data
            raise InvalidData(f"{path.name} line {line}: not CSV ({exc}).") from None


# Nested lists and objects of a full service record: (key, table, the parent id their rows take).
NESTED: dict[str, list[tuple[str, str, str | None]]] = {
    "service": [
        ("organization", "organization", None),
        ("program", "program", None),
        ("phones", "phone", "service_id"),
        ("schedules", "schedule", "service_id"),
        ("service_areas", "service_area", "service_id"),
        ("service_at_locations", "service_at_location", "service_id"),
        ("languages", "language", "service_id"),
        ("contacts", "contact", "service_id"),
        ("attributes", "attribute", "link_id"),
        ("referral_contact_points", "referral_contact_point", "service_id"),
    ],
    "organization": [("phones", "phone", "organization_id"), ("locations", "location", "organization_id")],
    "service_at_location": [
        ("location", "location", None),
        ("phones", "phone", "service_at_location_id"),
        ("contacts", "contact", "service_at_location_id"),
        ("schedules", "schedule", "service_at_location_id"),
    ],
    "location": [
        ("addresses", "address", "location_id"),
        ("phones", "phone", "location_id"),
        ("languages", "language", "location_id"),
        ("contacts", "contact", "location_id"),
        ("schedules", "schedule", "location_id"),
    ],
    "contact": [("phones", "phone", "contact_id")],
    "phone": [("languages", "language", "phone_id")],
    "attribute": [("taxonomy_term", "taxonomy_term", None)],
    "taxonomy_term": [("taxonomy_detail", "taxonomy", None)],
}
# Read-only fields of this API's answers, not data.
COMPUTED = {"distance", "hl7_service_type"}
NAMED_BY = {
    "organization": "organization_id", "program": "program_id", "location": "location_id",
    "taxonomy_term": "taxonomy_term_id", "taxonomy": "taxonomy_id",
}
NOT_STORED_LISTS = {
    "funding", "cost_options", "required_documents", "metadata", "accessibility", "organization_identifiers",
    "programs", "services", "attributes",
}


def flatten(record: dict, source: str, line: int, table: str = "service", prefix: str = "",
            rows: dict[str, list[Row]] | None = None, report: ImportReport | None = None) -> dict[str, list[Row]]:
    """The table rows of one nested record (a full HSDS service, as this API answers it)."""
    rows = rows if rows is not None else defaultdict(list)
    nested = {key: (child, parent_key) for key, child, parent_key in NESTED.get(table, [])}
    own: dict[str, Any] = {}
    for key, value in record.items():
        if key in nested or key in COMPUTED:
            continue
        if table == "service_area" and key == "towns":
            continue
        own[key] = value
    if table == "taxonomy_term" and isinstance(record.get("hl7_service_type"), dict):
        own["hl7_service_type_code"] = record["hl7_service_type"].get("code")
        own["hl7_service_type_display"] = record["hl7_service_type"].get("display")
    for key in list(own):
        if isinstance(own[key], list) and key in NOT_STORED_LISTS:
            if report is not None and own[key]:
                report.not_stored[(source, f" field {prefix}{key}", "records")] += len(own[key])
            del own[key]
    me = Row(source, line, own, prefix)
    rows[table].append(me)
    record_id = record.get("id")
    for key, (child, parent_key) in nested.items():
        value = record.get(key)
        if value in (None, [], {}):
            continue
        items = value if isinstance(value, list) else [value]
        for index, item in enumerate(items):
            where = f"{prefix}{key}[{index}]." if isinstance(value, list) else f"{prefix}{key}."
            if not isinstance(item, dict):
                me.faults.append(Fault(source, line, where.rstrip("."), "not a record"))
                continue
            if parent_key is not None and record_id is None:
                continue  # a record without an id is refused (id: required), and what it holds with it
            item = dict(item)
            if parent_key is not None:
                item.setdefault(parent_key, record_id)
                if child == "attribute":
                    item.setdefault("link_entity", table)
            flatten(item, source, line, child, where, rows, report)
            if parent_key is None and isinstance(item.get("id"), str):
                # the record names the organization, program, location or term nested in it
                me.raw.setdefault(NAMED_BY[child], item["id"])
    if table == "service_area" and isinstance(record.get("towns"), list) and record_id is not None:
        for index, town in enumerate(record["towns"]):
            rows["service_area_town"].append(Row(source, line, {"service_area_id": record_id, "town": town}, f"{prefix}towns[{index}]."))
    return rows


def import_records(session: Session, path: Path, strict: bool = True) -> ImportReport:
    """Import a JSON file (an array of full service records, one record, or a `Page` with
    `contents`) or an NDJSON file (one record a line), in batches of records."""
    importer = Importer(session, strict)
    source = path.name
    batch: list[tuple[int, Any]] = []
    for line, record in _records(path):
        batch.append((line, record))
        if len(batch) == BATCH_SIZE:
            _add_records(importer, source, batch)
            batch = []
    if batch:
        _add_records(importer, source, batch)
    return importer.finish()


def _add_records(importer: Importer, source: str, records: list[tuple[int, Any]]) -> None:
    rows: dict[str, list[Row]] = defaultdict(list)
    for line, record in records:
        if not isinstance(record, dict):
            importer.report.faults.append(Fault(source, line, "(record)", "not a JSON object"))
            continue
        flatten(record, source, line, rows=rows, report=importer.report)
    for spec in TABLES:
        if rows.get(spec.name):
            # A nested record given again (the organization of every service) is read once.
            importer.add(spec, rows[spec.name], repeats=spec.name != "service")


def _records(path: Path) -> Iterator[tuple[int, Any]]:
    """(line where the record starts, record), reading the file a piece at a time."""
    try:
        yield from _decoded_records(path)
    except UnicodeDecodeError:
        raise InvalidData(f"{path.name}: not UTF-8 text.") from None


def _decoded_records(path: Path) -> Iterator[tuple[int, Any]]:
    with path.open(encoding="utf-8-sig") as handle:
        first = ""
        while not first.strip():
            first = handle.readline()
            if not first:
                return
        handle.seek(0)
        head = first.lstrip()
        if path.suffix in (".ndjson", ".jsonl") or (head.startswith("{") and _is_json(first)):
            for line, text in enumerate(handle, start=1):
                if text.strip():
                    try:
                        yield line, json.loads(text)
                    except ValueError:
                        raise InvalidData(f"{path.name} line {line}: not JSON.") from None
            return
        if head.startswith("["):
            yield from _array_items(handle, path.name)
            return
        try:
            document = json.load(handle)
        except ValueError:
            raise InvalidData(f"{path.name}: not JSON.") from None
        items = document.get("contents") if isinstance(document, dict) and "contents" in document else [document]
        for item in items if isinstance(items, list) else [items]:
            yield 1, item


def _is_json(text: str) -> bool:
    try:
        json.loads(text)
    except ValueError:
        return False
    return True


def _array_items(handle, name: str) -> Iterator[tuple[int, Any]]:
    """The items of a top-level JSON array, decoded one at a time from a sliding buffer."""
    decoder = json.JSONDecoder()
    buffer, position, line, started, done = "", 0, 1, False, False
    while True:
        while True:
            while position < len(buffer) and buffer[position] in " \t\r\n,[]":
                char = buffer[position]
                if char == "\n":
                    line += 1
                elif char == "[":
                    if started:
                        raise InvalidData(f"{name} line {line}: not an array of records.")
                    started = True
                elif char == "]":
                    done = True
                position += 1
            if done or position < len(buffer):
                break
            chunk = handle.read(1 << 16)
            if not chunk:
                return
            buffer, position = buffer[position:] + chunk, 0
        if done:
            return
        while True:
            try:
                item, end = decoder.raw_decode(buffer, position)
                break
            except ValueError:
                chunk = handle.read(1 << 16)
                if not chunk:
                    raise InvalidData(f"{name} line {line}: not JSON.") from None
                buffer, position = buffer[position:] + chunk, 0
        yield line, item
        line += buffer.count("\n", position, end)
        position = end


# --------------------------------------------------------------------------- export


def export_package(session: Session, folder: Path) -> dict[str, int]:
    """Write every stored row as an HSDS tabular data package in `folder`; return rows per table."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    counts = {}
    for spec in TABLES:
        table = spec.table
        names = [f.name for f in spec.fields]
        order = [table.c.id] if "id" in table.c else [table.c[name] for name in names]
        count = 0
        with (folder / spec.path).open("w", newline="", encoding="utf-8") as handle:
            writer = csv.writer(handle, lineterminator="\r\n")
            writer.writerow(names)
            result = session.execute(select(*[table.c[name] for name in names]).order_by(*order).execution_options(yield_per=BATCH_SIZE))
            for row in result:
                writer.writerow([_cell(value) for value in row])
                count += 1
        counts[spec.name] = count
    (folder / PACKAGE_FILE).write_text(json.dumps(describe_package(), indent=2) + "\n", encoding="utf-8")
    return counts


def _cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, datetime):
        return value.astimezone(timezone.utc).isoformat()
    if isinstance(value, float):
        return repr(value)
    return str(value)


TYPES = {"uuid": ("string", "uuid"), "string": ("string", None), "number": ("number", None),
         "integer": ("integer", None), "boolean": ("boolean", None), "datetime": ("datetime", None)}


def describe_package() -> dict:
    """The `datapackage.json` of an export: HSDS 3.0's resources and this directory's extensions."""
    resources = []
    for spec in TABLES:
        fields = []
        for f in spec.fields:
            kind, fmt = TYPES[f.kind]
            entry: dict[str, Any] = {"name": f.name, "type": kind}
            if fmt or f.format in ("email", "uri"):
                entry["format"] = fmt or f.format
            constraints: dict[str, Any] = {"required": f.required}
            if f.choices:
                constraints["enum"] = list(f.choices)
            if f.max_length:
                constraints["maxLength"] = f.max_length
            if f.low is not None:
                constraints["minimum"] = f.low
            if f.high is not None:
                constraints["maximum"] = f.high
            entry["constraints"] = constraints
            if f.extension:
                entry["description"] = "Extension of this directory (not in HSDS 3.0)."
            fields.append(entry)
        schema: dict[str, Any] = {"fields": fields}
        schema["primaryKey"] = "id" if "id" in spec.table.c else ["service_area_id", "town"]
        keys = [
            {"fields": f.name, "reference": {"resource": f.ref, "fields": "id"}} for f in spec.fields if f.ref
        ]
        if keys:
            schema["foreignKeys"] = keys
        resource = {
            "name": spec.name, "path": spec.path, "format": "csv", "mediatype": "text/csv",
            "encoding": "utf-8", "profile": "tabular-data-resource", "schema": schema,
        }
        if spec.extension:
            resource["description"] = "Extension of this directory (not in HSDS 3.0)."
        resources.append(resource)
    return {
        "name": "human_services_data",
        "title": "Human Services Data Specification",
        "profile": "tabular-data-package",
        "version": "3.0.0",
        "homepage": "http://docs.openreferral.org",
        "resources": resources,
    }
