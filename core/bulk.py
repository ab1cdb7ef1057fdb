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
  new, are inserted with one executemany `INSERT` per table (the batched writer the HSDS
  import uses, `core.hsds.writer`), and indexed for search in bulk
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
from collections.abc import Callable
from datetime import datetime
from typing import Any

from sqlalchemy import Select, Table, select
from sqlalchemy.orm import Session, selectinload

from core import curation, search
from core.errors import InvalidData
from core.hsds.writer import chunks, existing_ids, full_row, insert_tables, table_of
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

IdsByTable = dict[Table, list[uuid.UUID]]
RowsByTable = dict[Table, list[dict]]
# The tables of a batch of services, parents first.
SERVICE_TABLES = [
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
]


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
    new, existing = _wait_for_curated_parents(records, new, existing)
    now = utcnow()
    rows: RowsByTable = defaultdict(list)
    for record in new:
        _add_organization_rows(rows, record, now)
    insert_tables(session, rows, [Organization, Location, Address, Phone])
    for record in existing:
        curation.save_organization(session, record)
    session.flush()
    return len(records)


def _wait_for_curated_parents(
    records: list[dict], new: list[dict], existing: list[dict]
) -> tuple[list[dict], list[dict]]:
    """(new, existing) again, a new organization whose parent is left to curation left to
    curation too: it waits for its parent, in batch order."""
    left_to_curation = {id(record) for record in existing}
    waiting_parents = {record["id"] for record in existing}
    for record in new:
        if record.get("parent_organization_id") in waiting_parents:
            left_to_curation.add(id(record))
            waiting_parents.add(record["id"])
    return (
        [record for record in new if id(record) not in left_to_curation],
        [record for record in records if id(record) in left_to_curation],
    )


def _add_organization_rows(rows: RowsByTable, record: dict, now: datetime) -> None:
    """The rows of one organization: itself, its phones, its locations with their addresses and phones."""
    organization_id = record["id"]
    _add_row(rows, Organization, record, last_modified=now)
    for phone in record["phones"]:
        _add_row(rows, Phone, phone, organization_id=organization_id)
    for location in record["locations"]:
        _add_row(rows, Location, location, organization_id=organization_id)
        for address in location["addresses"]:
            _add_row(rows, Address, address, location_id=location["id"])
        for phone in location["phones"]:
            _add_row(rows, Phone, phone, location_id=location["id"], organization_id=organization_id)


def _check_parent_organizations(session: Session, records: list[dict]) -> None:
    parents = {record["parent_organization_id"] for record in records if record.get("parent_organization_id")}
    known = existing_ids(session, table_of(Organization), parents)
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
        table_of(Organization): [record["id"]],
        table_of(Location): [location["id"] for location in locations],
        table_of(Address): [address["id"] for location in locations for address in location["addresses"]],
        table_of(Phone): [phone["id"] for phone in record["phones"]]
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

        self.organizations = _by_id(
            session,
            organization_ids,
            lambda chunk: select(Organization.id, Organization.name, Organization.alternate_name).where(
                Organization.id.in_(chunk)
            ),
        )
        self.programs = _by_id(
            session,
            program_ids,
            lambda chunk: select(Program.id, Program.organization_id, Program.name, Program.alternate_name).where(
                Program.id.in_(chunk)
            ),
        )
        self.locations: dict[uuid.UUID, Location] = {
            location.id: location
            for chunk in chunks(location_ids)
            for location in session.scalars(
                select(Location).where(Location.id.in_(chunk)).options(selectinload(Location.addresses))
            )
        }
        self.terms_by_code = {
            row.code: row
            for chunk in chunks(codes)
            for row in session.execute(_term_columns().where(TaxonomyTerm.code.in_(chunk)))
        }
        self.terms = _with_ancestors(session, {row.id: row for row in self.terms_by_code.values()})

    def check(self, record: dict) -> None:
        """Raise `InvalidData` as `curation.save_service` would for this record."""
        if record["organization_id"] not in self.organizations:
            raise InvalidData(
                "The organization referred to does not exist.", {"organization_id": ["Unknown organization id."]}
            )
        program_id = record.get("program_id")
        if program_id is not None:
            program = self.programs.get(program_id)
            if program is None:
                raise InvalidData("The program referred to does not exist.", {"program_id": ["Unknown program id."]})
            if program.organization_id != record["organization_id"]:
                raise InvalidData(
                    "The program belongs to another organization.",
                    {"program_id": ["Not a program of this organization."]},
                )
        for location_id in record["location_ids"]:
            if location_id not in self.locations:
                raise InvalidData(
                    "The location referred to does not exist.", {"location_ids": ["Unknown location id."]}
                )
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
        table_of(Service): [record["id"]],
        table_of(Phone): [phone["id"] for phone in record["phones"]]
        + [phone["id"] for contact in contacts for phone in contact["phones"]],
        table_of(Contact): [contact["id"] for contact in contacts],
        table_of(Language): [language["id"] for language in record["languages"]],
        table_of(ReferralContactPoint): [point["id"] for point in record["referral_contact_points"]],
        table_of(ServiceArea): [area["id"] for area in record["service_areas"]],
    }


def _write_services(session: Session, records: list[dict], references: _References) -> None:
    """Insert new services with everything hung on them, and their search index rows."""
    now = utcnow()
    rows: RowsByTable = defaultdict(list)
    words: set[str] = set()
    for record in records:
        _add_row(rows, Service, record, last_modified=now)
        _add_nested_rows(rows, record)
        areas = _add_area_rows(rows, record)
        term_ids = _add_category_rows(rows, record, references)
        _add_location_rows(rows, record, references)
        fields = _search_fields(record, references, term_ids, areas)
        rows[table_of(ServiceSearch)].append({"service_id": record["id"], **fields})
        words |= index_words(" ".join(fields.values()))
    insert_tables(session, rows, SERVICE_TABLES)
    search.remember_words(session, words)


def _add_nested_rows(rows: RowsByTable, record: dict) -> None:
    """A service's phones, contacts (with their phones), languages and referral contact points."""
    service_id = record["id"]
    for phone in record["phones"]:
        _add_row(rows, Phone, phone, service_id=service_id)
    for contact in record["contacts"]:
        _add_row(rows, Contact, contact, service_id=service_id)
        for phone in contact["phones"]:
            _add_row(rows, Phone, phone, contact_id=contact["id"], service_id=service_id)
    for language in record["languages"]:
        _add_row(rows, Language, language, service_id=service_id)
    for point in record["referral_contact_points"]:
        _add_row(rows, ReferralContactPoint, point, service_id=service_id)


def _add_area_rows(rows: RowsByTable, record: dict) -> list[search.AreaText]:
    """A service's areas and their towns; return the text of each area, for the search index."""
    areas = []
    for area in record["service_areas"]:
        _add_row(rows, ServiceArea, area, service_id=record["id"])
        towns = sorted(set(area["towns"]))
        rows[table_of(ServiceAreaTown)].extend({"service_area_id": area["id"], "town": town} for town in towns)
        areas.append(search.AreaText(area["id"], area.get("name"), area.get("description"), towns))
    return areas


def _add_category_rows(rows: RowsByTable, record: dict, references: _References) -> list[uuid.UUID]:
    """One attribute per category (with curation's id); return the terms, in order of attribute id."""
    service_id = record["id"]
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
    rows[table_of(Attribute)].extend(attributes)
    return [attribute["taxonomy_term_id"] for attribute in sorted(attributes, key=lambda a: a["id"])]


def _add_location_rows(rows: RowsByTable, record: dict, references: _References) -> None:
    """A service's places (with curation's ids), and the points search measures distance from."""
    service_id = record["id"]
    for location_id in dict.fromkeys(record["location_ids"]):
        rows[table_of(ServiceAtLocation)].append(
            {
                "id": uuid.uuid5(curation.ATTRIBUTE_NAMESPACE, f"sal:{service_id}:{location_id}"),
                "service_id": service_id,
                "location_id": location_id,
                "description": None,
            }
        )
        point = search.location_point(references.locations[location_id])
        if point is not None:
            rows[table_of(ServicePoint)].append(
                {"service_id": service_id, "location_id": location_id, "latitude": point[0], "longitude": point[1]}
            )


def _search_fields(
    record: dict, references: _References, term_ids: list[uuid.UUID], areas: list[search.AreaText]
) -> dict[str, str]:
    """The service's search index text, as `core.search.index_service` writes it."""
    program_id = record.get("program_id")
    program = references.programs.get(program_id) if program_id is not None else None
    organization = references.organizations[record["organization_id"]]
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
    return fields


def _term_columns():
    return select(
        TaxonomyTerm.id, TaxonomyTerm.taxonomy_id, TaxonomyTerm.code, TaxonomyTerm.name, TaxonomyTerm.parent_id
    )


def _with_ancestors(session: Session, terms: dict[uuid.UUID, Any]) -> dict[uuid.UUID, Any]:
    """`terms` and every term above them, one query per level of the tree."""
    terms = dict(terms)
    while True:
        missing = {row.parent_id for row in terms.values() if row.parent_id and row.parent_id not in terms}
        if not missing:
            return terms
        found = [
            row
            for chunk in chunks(missing)
            for row in session.execute(_term_columns().where(TaxonomyTerm.id.in_(chunk)))
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
    taken = {table: existing_ids(session, table, table_ids) for table, table_ids in wanted.items()}
    new: list[dict] = []
    existing: list[dict] = []
    for record, ids in zip(records, per_record, strict=True):
        clash = any(
            len(set(table_ids)) != len(table_ids) or any(i in taken[table] for i in table_ids)
            for table, table_ids in ids.items()
        )
        for table, table_ids in ids.items():
            taken[table].update(table_ids)
        (existing if clash else new).append(record)
    return new, existing


def _add_row(rows: RowsByTable, model: type, data: dict, **fixed: Any) -> None:
    """Add the full row of `model`'s table that a record gives (see `core.hsds.writer.full_row`)."""
    rows[table_of(model)].append(full_row(table_of(model), data, **fixed))


def _by_id(session: Session, ids: set[uuid.UUID], query: Callable[[list[uuid.UUID]], Select]) -> dict[uuid.UUID, Any]:
    """The rows a query of some ids finds, by id, `IDS_PER_QUERY` ids to a query."""
    return {row.id: row for chunk in chunks(ids) for row in session.execute(query(chunk))}
