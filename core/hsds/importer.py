"""Checking imported rows and writing the sound ones, table by table, parents first.

An `Importer` is given batches of `Row`s of one table at a time (by `core.hsds.readers`, or by
`core.editing` for one record of the write API). For each batch it parses every field
(`core.hsds.values`), checks every reference (to a row of the import, accepted or rejected, or
of the database) and the rules of the table (`core.hsds.rules`), orders
rows that name a parent of their own table after it, and upserts the sound rows
(`core.hsds.writer`). `finish` reindexes for search every service the import reached.

`strict`: any fault and nothing is written (the caller rolls back; writing stops at the first
fault, checking goes on to report every one). Otherwise the sound rows are written and each row
that refers to a rejected row is rejected too, naming it.
"""

from __future__ import annotations

import uuid
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import func, select, tuple_
from sqlalchemy.orm import Session

from core import search
from core.directory import term_and_descendants
from core.hsds.ids import IdStore, key
from core.hsds.profile import BY_NAME, REFERABLE, SELF_REFERRING, TableSpec
from core.hsds.report import Fault, ImportReport
from core.hsds.rules import TableRules
from core.hsds.values import parse_value
from core.hsds.writer import chunks, existing_ids, insert_rows, table_of, upsert_rows
from models import Attribute, Referral, Service, ServiceArea, ServiceAreaTown, ServiceAtLocation, utcnow


def open_statuses() -> tuple[str, ...]:
    """The open referral statuses, from the lifecycle in core.referrals (imported late: the
    referral rules use the import's record writer, through core.editing)."""
    from core.referrals import OPEN

    return OPEN


@dataclass
class Row:
    """One row read from a file or a record: where it comes from, what it says (`raw`), its
    parsed values, and its faults."""

    source: str
    line: int
    raw: dict[str, Any]
    prefix: str = ""  # where the record sits in a nested JSON record, e.g. "phones[0]."
    values: dict[str, Any] = field(default_factory=dict)
    faults: list[Fault] = field(default_factory=list)

    def fault(self, name: str, message: str, dependent: bool = False) -> None:
        self.faults.append(Fault(self.source, self.line, self.prefix + name, message, dependent))


# A reference to check: (the row, its field, the tables the id may be of, the id).
Reference = tuple[Row, str, tuple[str, ...], uuid.UUID]
# References found in no table of the import, by tables ("organization", or "a,b,c"): (row, field, id).
Unresolved = dict[str, list[tuple[Row, str, uuid.UUID]]]


class Importer:
    """Checks rows table by table, parents first, and writes the sound ones."""

    def __init__(self, session: Session, strict: bool = True) -> None:
        self.session = session
        self.report = ImportReport(strict=strict)
        self.ids = IdStore(session)
        self.rejected: dict[str, dict[int, str]] = defaultdict(dict)  # table -> id key -> where the row is
        self.rules = TableRules(session, self.ids)
        self.now = utcnow()
        self.referral_fields_changed: dict[uuid.UUID, tuple[str, tuple[str, ...]]] = {}

    @property
    def writing(self) -> bool:
        return self.report.written

    def add(self, spec: TableSpec, rows: list[Row], repeats: bool = False, more: bool = False) -> list[Row]:
        """Check a batch of rows of one table and write the sound ones. `repeats`: a row whose
        id was already taken is passed over (the same organization nested in many records).
        `more`: more batches of this table follow; a row naming a parent of its own table that
        is not known yet is returned, not checked, to be given again with the next batch."""
        waiting: list[Row] = []
        if more and spec.name in SELF_REFERRING:
            rows, waiting = self._wait_for_parents(spec, rows)
        if repeats:
            rows = self._first_sightings(spec, rows)
        for row in rows:
            self._parse(spec, row)
        taken = (
            self.ids.known([IdStore.ACCEPTED[spec.name]], {row.values["id"] for row in rows if "id" in row.values})
            if spec.name in REFERABLE
            else set()
        )
        self._check_references(spec, rows, taken)
        self.rules.check(spec, rows)
        if spec.name in SELF_REFERRING:
            rows = self._parents_first(spec, rows)
        sound = self._sort_out(spec, rows, taken)
        if sound and self.writing:
            self._write(spec, sound)
        return waiting

    def _sort_out(self, spec: TableSpec, rows: list[Row], taken: set[uuid.UUID]) -> list[Row]:
        """The sound rows. The faults of the others go to the report, and their ids (unless
        another row holds them) to `rejected`; the ids of the sound ones to the id store."""
        referable = spec.name in REFERABLE
        sound = []
        accepted: set[uuid.UUID] = set()
        for row in rows:
            row_id = row.values.get("id")
            if row.faults:
                self.report.faults.extend(row.faults)
                if row_id is not None and row_id not in taken and row_id not in accepted:
                    self.rejected[spec.name][key(row_id)] = f"{row.source} line {row.line}"
            else:
                if row_id is not None and referable:
                    accepted.add(row_id)
                sound.append(row)
        owners = {row.values["id"]: row.values["organization_id"] for row in sound} if spec.name == "program" else None
        self.ids.add(IdStore.ACCEPTED[spec.name], accepted, owners)
        return sound

    # ---- rows given more than once, rows waiting for their parent

    def _first_sightings(self, spec: TableSpec, rows: list[Row]) -> list[Row]:
        """The first row of each id in the batch, unless an earlier batch had that id."""
        firsts: dict[Any, Row] = {}
        for row in rows:
            raw_id = (
                row.raw.get("id") if "id" in spec.table.c else (row.raw.get("service_area_id"), row.raw.get("town"))
            )
            firsts.setdefault(repr(raw_id) if raw_id is not None else id(row), row)
        seen = self._seen(spec, firsts.values())
        return [row for row in firsts.values() if id(row) not in seen]

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
        return {python_id for python_id, value in parsed.items() if value in accepted or key(value) in rejected}

    def _wait_for_parents(self, spec: TableSpec, rows: list[Row]) -> tuple[list[Row], list[Row]]:
        """(rows to check now, rows whose parent, or a parent's parent in the batch, names a row
        not read yet: neither in this batch, nor accepted or rejected before, nor stored)."""
        id_field = next(f for f in spec.fields if f.name == "id")
        parent_field = next(f for f in spec.fields if f.ref == spec.name)
        by_id: dict[uuid.UUID, Row] = {}
        parents: dict[int, uuid.UUID | None] = {}
        for row in rows:
            row_id = parse_value(id_field, row.raw.get("id"))[0]  # faults come later
            if row_id is not None:
                by_id.setdefault(row_id, row)
            parents[id(row)] = parse_value(parent_field, row.raw.get(parent_field.name))[0]
        unknown = self._not_read_yet(spec, {parent for parent in parents.values() if parent is not None} - set(by_id))
        if not unknown:
            return rows, []
        now: list[Row] = []
        later: list[Row] = []
        for row in rows:
            (later if _waits(row, unknown, by_id, parents) else now).append(row)
        return now, later

    def _not_read_yet(self, spec: TableSpec, ids: set[uuid.UUID]) -> set[uuid.UUID]:
        """Those of `ids` of the table neither accepted nor rejected before, nor stored."""
        known = self.ids.known([IdStore.ACCEPTED[spec.name]], ids)
        known |= {value for value in ids - known if key(value) in self.rejected[spec.name]}
        known |= existing_ids(self.session, spec.table, ids - known)
        return ids - known

    # ---- checking

    def _parse(self, spec: TableSpec, row: Row) -> None:
        """Read each field of the row; count what the table does not store."""
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
        """Every id is given once, and every id a row names is of a row accepted by the import
        or stored. `taken`: the ids of the batch that earlier batches accepted."""
        _check_unique_ids(rows, taken)
        unresolved = self._resolve_in_import(_references(spec, rows))
        self._check_in_database(unresolved)

    def _resolve_in_import(self, references: list[Reference]) -> Unresolved:
        """Pass the references to accepted rows, fault those to rejected rows (naming them);
        return the rest, to be looked for in the database."""
        wanted: dict[tuple[str, ...], set[uuid.UUID]] = defaultdict(set)
        for _, _, targets, value in references:
            wanted[targets].add(value)
        accepted = {
            targets: self.ids.known([IdStore.ACCEPTED[target] for target in targets], values)
            for targets, values in wanted.items()
        }
        unresolved: Unresolved = defaultdict(list)
        for row, name, targets, value in references:
            if value in accepted[targets]:
                continue
            id_key = key(value)
            where = next(
                ((target, self.rejected[target][id_key]) for target in targets if id_key in self.rejected[target]), None
            )
            if where is not None:
                row.fault(name, f"the {where[0]} it names was rejected ({where[1]})", dependent=True)
            else:
                unresolved[",".join(targets)].append((row, name, value))
        return unresolved

    def _check_in_database(self, unresolved: Unresolved) -> None:
        for targets, wanted in unresolved.items():
            names = targets.split(",")
            ids = {value for _, _, value in wanted}
            found: set[uuid.UUID] = set()
            for target in names:
                found |= existing_ids(self.session, BY_NAME[target].table, ids - found)
            label = names[0] if len(names) == 1 else "record"
            for row, name, value in wanted:
                if value not in found:
                    row.fault(name, f"no {label} has this id")

    def _parents_first(self, spec: TableSpec, rows: list[Row]) -> list[Row]:
        """Order rows that name a parent of their own table after it; a row whose parent in the
        batch is rejected, or that is its own ancestor, is rejected."""
        parent_field = next(f.name for f in spec.fields if f.ref == spec.name)
        by_key = {key(row.values["id"]): row for row in rows if "id" in row.values}
        ordered: list[Row] = []
        state: dict[int, str] = {}

        def visit(row: Row) -> bool:
            row_key = key(row.values["id"]) if "id" in row.values else None
            if row_key is not None and state.get(row_key) == "done":
                return not row.faults
            parent_id = row.values.get(parent_field)
            parent = by_key.get(key(parent_id)) if parent_id is not None else None
            if parent is not None and parent is not row:
                if row_key is not None:
                    state[row_key] = "visiting"
                if state.get(key(parent.values["id"])) == "visiting":
                    row.fault(parent_field, "makes a cycle of parents")
                elif not visit(parent) and not row.faults:
                    row.fault(
                        parent_field,
                        f"the {spec.name} it names was rejected ({parent.source} line {parent.line})",
                        True,
                    )
            elif parent is row:
                row.fault(parent_field, "names the row itself")
            if row_key is not None:
                state[row_key] = "done"
            ordered.append(row)
            return not row.faults

        for row in rows:
            if "id" not in row.values or state.get(key(row.values["id"])) != "done":
                visit(row)
        return ordered

    # ---- writing

    def _write(self, spec: TableSpec, rows: list[Row]) -> None:
        """Upsert the sound rows of a batch; note what search must reindex and what changed
        under open referrals."""
        if spec.name == "service_area_town":
            self._write_towns(rows)
            return
        done = upsert_rows(self.session, spec.table, [(row.values, row.raw) for row in rows], self.now)
        if spec.name == "service":
            self._watch_referral_fields(done.updated)
        touched: dict[int, list[uuid.UUID]] = defaultdict(list)
        for index, is_new in done.written:
            _touch(spec.name, rows[index].values, is_new, touched)
        self.report.inserted[spec.name] += len(done.inserted)
        self.report.updated[spec.name] += len(done.updated)
        self.report.unchanged[spec.name] += done.unchanged
        for kind, ids in touched.items():
            self.ids.add(kind, ids)

    def _watch_referral_fields(self, updated: list[tuple[dict[str, Any], Any]]) -> None:
        """Remember the services whose program, status or accepts_referrals changed: their open
        referrals are reported (see _report_open_referrals)."""
        for values, old in updated:
            moved = tuple(name for name in ("program_id", "status", "accepts_referrals") if values[name] != old[name])
            if moved:
                self.referral_fields_changed[values["id"]] = (values["name"], moved)

    def _write_towns(self, rows: list[Row]) -> None:
        """Add the towns an area does not have yet (a town is a key, nothing to update)."""
        pairs = {(row.values["service_area_id"], row.values["town"]) for row in rows}
        table = table_of(ServiceAreaTown)
        present: set = set()
        for chunk in chunks(sorted(pairs)):
            present.update(
                tuple(found)
                for found in self.session.execute(
                    select(table.c.service_area_id, table.c.town).where(
                        tuple_(table.c.service_area_id, table.c.town).in_(chunk)
                    )
                )
            )
        new = sorted(pairs - present)
        if new:
            insert_rows(self.session, table, [{"service_area_id": a, "town": t} for a, t in new])
            self.ids.add(IdStore.CHANGED["service_area"], (a for a, _ in new))
        self.report.inserted["service_area_town"] += len(new)
        self.report.unchanged["service_area_town"] += len(rows) - len(new)

    # ---- the end

    def finish(self) -> ImportReport:
        """Reindex for search every service the import changed, directly or through a row it
        names, a batch at a time (the ids are gathered in the import's temporary table)."""
        if not self.writing:
            return self.report
        self.session.flush()
        reindex = self._gather_services_reached()
        self.report.reindexed = sum(search.index_services(self.session, page) for page in self.ids.pages(reindex))
        self._report_open_referrals()
        return self.report

    def _gather_services_reached(self) -> list[int]:
        """Hold, in the id store, the services reached through the organizations, programs,
        locations, areas and terms the import updated; return the kinds that name the services
        to reindex."""
        ids = self.ids
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
        return reindex

    def _report_open_referrals(self) -> None:
        watched = self.referral_fields_changed
        counts: dict[uuid.UUID, int] = {}
        for chunk in chunks(list(watched)):
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


# --------------------------------------------------------------------------- the steps of a check


def _waits(
    row: Row, unknown: set[uuid.UUID], by_id: dict[uuid.UUID, Row], parents: dict[int, uuid.UUID | None]
) -> bool:
    """Whether the row's parent, or a parent's parent in the batch, is one of `unknown`."""
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


def _check_unique_ids(rows: list[Row], taken: set[uuid.UUID]) -> None:
    """Fault a row whose id an earlier batch, or an earlier row of this one, already gave."""
    lines: dict[uuid.UUID, int] = {}
    for row in rows:
        row_id = row.values.get("id")
        if row_id is None:
            continue
        if row_id in taken or row_id in lines:
            first = f" (line {lines[row_id]})" if row_id in lines else ""
            row.fault("id", f"given twice in this import{first}")
        lines.setdefault(row_id, row.line)


def _references(spec: TableSpec, rows: list[Row]) -> list[Reference]:
    """The ids the rows name, with the tables each may be of. A parent of the row's own table
    given in the batch is left to _parents_first; an attribute's link_id may name a row of the
    table its link_entity says, or of any table when it says none the import knows."""
    batch_ids = {row.values["id"] for row in rows if "id" in row.values}
    references: list[Reference] = []
    for row in rows:
        for spec_field in spec.fields:
            target, value = spec_field.ref, row.values.get(spec_field.name)
            if target is None or value is None or (target == spec.name and value in batch_ids):
                continue
            references.append((row, spec_field.name, (target,), value))
        if spec.name == "attribute" and "link_id" in row.values:
            entity = row.values.get("link_entity")
            targets = (entity,) if entity in REFERABLE else tuple(sorted(REFERABLE))
            references.append((row, "link_id", targets, row.values["link_id"]))
    return references


def _touch(name: str, values: dict, is_new: bool, touched: dict[int, list[uuid.UUID]]) -> None:
    """Note what search must reindex: the service, or the rows whose change reaches it."""
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
