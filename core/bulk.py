"""Loading many new directory records at once: one INSERT per table per batch.

`core.curation` saves one record at a time (an upsert that compares every field, about forty
statements per service). That is right for the write API and the seed directory, and slow for
an import of tens of thousands of services. The functions here take a batch of records already
validated by `schemas.inputs.OrganizationIn` / `ServiceIn` (the same dictionaries
`curation.save_organization` / `save_service` take) and leave the database exactly as calling
those functions record by record would, apart from `last_modified` (one timestamp per batch):

- references of the whole batch are checked first, in a few queries, with curation's messages
  (`InvalidData`); nothing is written when one fails;
- records that are new, and all of whose nested records (phones, contacts, locations, ...) are
  new, are inserted with one executemany `INSERT` per table, and indexed for search in bulk
  (`service_search`, `search_word`, `search_word_variant` on SQLite, `service_point`) with the
  same text `core.search.index_service` writes (both use `search.search_fields`);
- any other record (its id, or a nested record's id, is already in the database or earlier in
  the batch) is saved afterwards, in batch order, by curation, so the result is always what
  the upsert gives.

The caller owns the transaction: commit after each batch (1,000 services is a good size).
Organizations, and the locations services name, must be written before the services.
"""
from __future__ import annotations

import uuid
from collections import defaultdict
from typing import Any, Callable, Iterable, Mapping

from sqlalchemy import Table, insert, select
from sqlalchemy.orm import Session, selectinload

from core import curation, search
from core.errors import InvalidData
from core.text import index_words
from models import (
    Address,
    Attribute,
    Contact,
    Language,
    Location,
    Organization,
    Phone,
    Program,
    ReferralContactPoint,
    Service,
    ServiceArea,
    ServiceAreaTown,
    ServiceAtLocation,
    ServicePoint,
    ServiceSearch,
    TaxonomyTerm,
    utcnow,
)

# Ids per `IN (...)` query: well under SQLite's limit on bound parameters.
IDS_PER_QUERY = 500

IdsByTable = dict[Table, list[uuid.UUID]]


# --------------------------------------------------------------------------- organizations


def insert_organizations(session: Session, records: list[dict]) -> int:
    """Write a batch of validated organizations (with their phones and locations); return how many.

    Raises `InvalidData`, before writing anything, when a record names a parent organization
    that is neither in the database nor earlier in the batch.
    """
    session.flush()
    if not records:
        return 0
    _check_parent_organizations(session, records)
    new, existing = _split_new(session, records, _organization_ids)
    # A new organization whose parent is left to curation waits for its parent, in batch order.
    left_to_curation = {id(record) for record in existing}
    waiting_parents = {record["id"] for record in existing}
    for record in new:
        if record.get("parent_organization_id") in waiting_parents:
            left_to_curation.add(id(record))
            waiting_parents.add(record["id"])
    new = [record for record in new if id(record) not in left_to_curation]
    existing = [record for record in records if id(record) in left_to_curation]

    now = utcnow()
    rows: dict[Table, list[dict]] = defaultdict(list)
    for record in new:
        organization_id = record["id"]
        rows[Organization.__table__].append(_row(Organization.__table__, record, last_modified=now))
        for phone in record["phones"]:
            rows[Phone.__table__].append(_row(Phone.__table__, phone, organization_id=organization_id))
        for location in record["locations"]:
            rows[Location.__table__].append(_row(Location.__table__, location, organization_id=organization_id))
            for address in location["addresses"]:
                rows[Address.__table__].append(_row(Address.__table__, address, location_id=location["id"]))
            for phone in location["phones"]:
                rows[Phone.__table__].append(
                    _row(Phone.__table__, phone, location_id=location["id"], organization_id=organization_id)
                )
    _insert(session, rows, [Organization, Location, Address, Phone])
    for record in existing:
        curation.save_organization(session, record)
    session.flush()
    return len(records)


def _check_parent_organizations(session: Session, records: list[dict]) -> None:
    parents = {record["parent_organization_id"] for record in records if record.get("parent_organization_id")}
    known = _existing_ids(session, Organization.__table__, parents)
    for record in records:
        parent = record.get("parent_organization_id")
        if parent is not None and parent not in known:
            raise InvalidData(
                "The organization referred to does not exist.", {"parent_organization_id": ["Unknown organization id."]}
            )
        known.add(record["id"])


def _organization_ids(record: dict) -> IdsByTable:
    locations = record["locations"]
    return {
        Organization.__table__: [record["id"]],
        Location.__table__: [location["id"] for location in locations],
        Address.__table__: [address["id"] for location in locations for address in location["addresses"]],
        Phone.__table__: [phone["id"] for phone in record["phones"]]
        + [phone["id"] for location in locations for phone in location["phones"]],
    }


# --------------------------------------------------------------------------- services


class _References:
    """What a batch of services refers to, loaded in a few queries and checked as curation does."""

    def __init__(self, session: Session, records: list[dict]) -> None:
        organization_ids = {record["organization_id"] for record in records}
        program_ids = {record["program_id"] for record in records if record.get("program_id")}
        location_ids = {location_id for record in records for location_id in record["location_ids"]}
        codes = {code for record in records for code in record["categories"]}

        self.organizations = {
            row.id: row
            for chunk in _chunks(organization_ids)
            for row in session.execute(
                select(Organization.id, Organization.name, Organization.alternate_name).where(Organization.id.in_(chunk))
            )
        }
        self.programs = {
            row.id: row
            for chunk in _chunks(program_ids)
            for row in session.execute(
                select(Program.id, Program.organization_id, Program.name, Program.alternate_name).where(
                    Program.id.in_(chunk)
                )
            )
        }
        self.locations: dict[uuid.UUID, Location] = {
            location.id: location
            for chunk in _chunks(location_ids)
            for location in session.scalars(
                select(Location).where(Location.id.in_(chunk)).options(selectinload(Location.addresses))
            )
        }
        self.terms_by_code = {
            row.code: row
            for chunk in _chunks(codes)
            for row in session.execute(_term_columns().where(TaxonomyTerm.code.in_(chunk)))
        }
        self.terms = _with_ancestors(session, {row.id: row for row in self.terms_by_code.values()})

    def check(self, record: dict) -> None:
        """Raise `InvalidData` as `curation.save_service` would for this record."""
        if record["organization_id"] not in self.organizations:
            raise InvalidData("The organization referred to does not exist.", {"organization_id": ["Unknown organization id."]})
        program_id = record.get("program_id")
        if program_id is not None:
            program = self.programs.get(program_id)
            if program is None:
                raise InvalidData("The program referred to does not exist.", {"program_id": ["Unknown program id."]})
            if program.organization_id != record["organization_id"]:
                raise InvalidData(
                    "The program belongs to another organization.", {"program_id": ["Not a program of this organization."]}
                )
        for location_id in record["location_ids"]:
            if location_id not in self.locations:
                raise InvalidData("The location referred to does not exist.", {"location_ids": ["Unknown location id."]})
        if any(code not in self.terms_by_code for code in record["categories"]):
            raise InvalidData("A category code is not in any taxonomy.", {"categories": ["Unknown category code."]})


def insert_services(session: Session, records: list[dict]) -> int:
    """Write a batch of validated services with everything hung on them, indexed for search;
    return how many.

    Raises `InvalidData`, before writing anything, when a record names an organization,
    program, location or category code that does not exist, or a program of another
    organization (the first such record of the batch, with curation's message).
    """
    session.flush()
    if not records:
        return 0
    references = _References(session, records)
    for record in records:
        references.check(record)
    new, existing = _split_new(session, records, _service_ids)
    if new:
        _write_services(session, new, references)
    for record in existing:
        curation.save_service(session, record)
    session.flush()
    return len(records)


def _service_ids(record: dict) -> IdsByTable:
    contacts = record["contacts"]
    return {
        Service.__table__: [record["id"]],
        Phone.__table__: [phone["id"] for phone in record["phones"]]
        + [phone["id"] for contact in contacts for phone in contact["phones"]],
        Contact.__table__: [contact["id"] for contact in contacts],
        Language.__table__: [language["id"] for language in record["languages"]],
        ReferralContactPoint.__table__: [point["id"] for point in record["referral_contact_points"]],
        ServiceArea.__table__: [area["id"] for area in record["service_areas"]],
    }


def _write_services(session: Session, records: list[dict], references: _References) -> None:
    now = utcnow()
    rows: dict[Table, list[dict]] = defaultdict(list)
    words: set[str] = set()
    for record in records:
        service_id = record["id"]
        rows[Service.__table__].append(_row(Service.__table__, record, last_modified=now))
        for phone in record["phones"]:
            rows[Phone.__table__].append(_row(Phone.__table__, phone, service_id=service_id))
        for contact in record["contacts"]:
            rows[Contact.__table__].append(_row(Contact.__table__, contact, service_id=service_id))
            for phone in contact["phones"]:
                rows[Phone.__table__].append(
                    _row(Phone.__table__, phone, contact_id=contact["id"], service_id=service_id)
                )
        for language in record["languages"]:
            rows[Language.__table__].append(_row(Language.__table__, language, service_id=service_id))
        for point in record["referral_contact_points"]:
            rows[ReferralContactPoint.__table__].append(
                _row(ReferralContactPoint.__table__, point, service_id=service_id)
            )
        areas = []
        for area in record["service_areas"]:
            rows[ServiceArea.__table__].append(_row(ServiceArea.__table__, area, service_id=service_id))
            towns = sorted(set(area["towns"]))
            rows[ServiceAreaTown.__table__].extend({"service_area_id": area["id"], "town": town} for town in towns)
            areas.append(search.AreaText(area["id"], area.get("name"), area.get("description"), towns))

        attributes = []
        for code in dict.fromkeys(record["categories"]):
            term_id = references.terms_by_code[code].id
            attributes.append(
                {
                    "id": uuid.uuid5(curation.ATTRIBUTE_NAMESPACE, f"{service_id}:{term_id}"),
                    "link_id": service_id,
                    "link_type": "service_category",
                    "link_entity": "service",
                    "taxonomy_term_id": term_id,
                    "value": None,
                }
            )
        rows[Attribute.__table__].extend(attributes)

        for location_id in dict.fromkeys(record["location_ids"]):
            rows[ServiceAtLocation.__table__].append(
                {
                    "id": uuid.uuid5(curation.ATTRIBUTE_NAMESPACE, f"sal:{service_id}:{location_id}"),
                    "service_id": service_id,
                    "location_id": location_id,
                    "description": None,
                }
            )
            point = search.location_point(references.locations[location_id])
            if point is not None:
                rows[ServicePoint.__table__].append(
                    {"service_id": service_id, "location_id": location_id, "latitude": point[0], "longitude": point[1]}
                )

        program = references.programs.get(record.get("program_id"))
        organization = references.organizations[record["organization_id"]]
        term_ids = [attribute["taxonomy_term_id"] for attribute in sorted(attributes, key=lambda a: a["id"])]
        fields = search.search_fields(
            name=record["name"],
            alternate_name=record.get("alternate_name"),
            description=record.get("description"),
            eligibility_description=record.get("eligibility_description"),
            program_names=(program.name, program.alternate_name) if program else (),
            organization_names=(organization.name, organization.alternate_name),
            category_names=search.category_names(term_ids, references.terms.get),
            areas=areas,
        )
        fields["tag_text"] = search.tag_text(
            status=record["status"],
            organization_id=record["organization_id"],
            program_id=record.get("program_id"),
            terms=search.ancestry(term_ids, references.terms.get),
            areas=[(area["statewide"], area["towns"]) for area in record["service_areas"]],
            language_codes=[language.get("code") for language in record["languages"]],
        )
        rows[ServiceSearch.__table__].append({"service_id": service_id, **fields})
        words |= index_words(" ".join(fields.values()))

    _insert(
        session,
        rows,
        [
            Service,
            Contact,
            Phone,
            Language,
            ReferralContactPoint,
            ServiceArea,
            ServiceAreaTown,
            Attribute,
            ServiceAtLocation,
            ServiceSearch,
            ServicePoint,
        ],
    )
    search.remember_words(session, words)


def _term_columns():
    return select(TaxonomyTerm.id, TaxonomyTerm.taxonomy_id, TaxonomyTerm.code, TaxonomyTerm.name, TaxonomyTerm.parent_id)


def _with_ancestors(session: Session, terms: dict[uuid.UUID, Any]) -> dict[uuid.UUID, Any]:
    """`terms` and every term above them, one query per level of the tree."""
    terms = dict(terms)
    while True:
        missing = {row.parent_id for row in terms.values() if row.parent_id and row.parent_id not in terms}
        if not missing:
            return terms
        found = [
            row for chunk in _chunks(missing) for row in session.execute(_term_columns().where(TaxonomyTerm.id.in_(chunk)))
        ]
        if not found:
            return terms
        terms.update((row.id, row) for row in found)


# --------------------------------------------------------------------------- shared


def _split_new(
    session: Session, records: list[dict], ids_of: Callable[[dict], IdsByTable]
) -> tuple[list[dict], list[dict]]:
    """The records to insert in bulk, and those to leave to curation (in batch order): a record
    whose id, or a nested record's id, is in the database already, earlier in the batch, or
    twice in the record."""
    per_record = [ids_of(record) for record in records]
    wanted: dict[Table, set[uuid.UUID]] = defaultdict(set)
    for ids in per_record:
        for table, table_ids in ids.items():
            wanted[table].update(table_ids)
    taken = {table: _existing_ids(session, table, table_ids) for table, table_ids in wanted.items()}
    new, existing = [], []
    for record, ids in zip(records, per_record):
        clash = any(
            len(set(table_ids)) != len(table_ids) or any(i in taken[table] for i in table_ids)
            for table, table_ids in ids.items()
        )
        for table, table_ids in ids.items():
            taken[table].update(table_ids)
        (existing if clash else new).append(record)
    return new, existing


def _existing_ids(session: Session, table: Table, ids: Iterable[uuid.UUID]) -> set[uuid.UUID]:
    return {found for chunk in _chunks(ids) for found in session.scalars(select(table.c.id).where(table.c.id.in_(chunk)))}


def _chunks(values: Iterable[Any]) -> Iterable[list[Any]]:
    values = list(values)
    for start in range(0, len(values), IDS_PER_QUERY):
        yield values[start : start + IDS_PER_QUERY]


def _row(table: Table, data: Mapping[str, Any], **fixed: Any) -> dict[str, Any]:
    """A full row of `table` from a validated record, as curation's upsert would write it: the
    record's values for the table's columns, None for absent optional ones, the column default
    for absent required ones, and `fixed` (parent ids, last_modified) over all."""
    row: dict[str, Any] = {}
    for column in table.columns:
        key = column.key
        if key in fixed:
            row[key] = fixed[key]
        elif key in data:
            row[key] = data[key]
        elif column.nullable:
            row[key] = None
        elif column.default is not None and column.default.is_scalar:
            row[key] = column.default.arg
        else:
            raise KeyError(f"{table.name}.{key} is required")
    return row


def _insert(session: Session, rows: Mapping[Table, list[dict]], order: list[type]) -> None:
    """One executemany INSERT per table, parents before children."""
    for model in order:
        table = model.__table__
        if rows.get(table):
            session.execute(insert(table), rows[table])
