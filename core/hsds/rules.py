"""The rules of a table beyond those of each field, kept across the batches of an import.

- a program's slug (this directory's readable key) is unique: taken from the row or made from
  the name, then made unique with a number;
- a service's program is a program of the service's organization;
- a taxonomy term's code is unique within its taxonomy, and a term with no taxonomy name
  takes its taxonomy's.
"""

from __future__ import annotations

import re
import uuid
from typing import TYPE_CHECKING

from sqlalchemy import select
from sqlalchemy.orm import Session

from core.hsds.ids import IdStore, key
from core.hsds.profile import TableSpec
from core.hsds.writer import chunks
from models import Program, Taxonomy, TaxonomyTerm

if TYPE_CHECKING:
    from core.hsds.importer import Row


class TableRules:
    """The rules of each table, with what they remember of the rows accepted so far."""

    def __init__(self, session: Session, ids: IdStore) -> None:
        self.session = session
        self.ids = ids
        self.taxonomy_names: dict[int, str] = {}
        self.slugs: dict[str, int] = {}
        self.term_codes: dict[tuple[int | None, str], int] = {}

    def check(self, spec: TableSpec, rows: list[Row]) -> None:
        """Check the rules of the table the rows are of, beyond those of each field."""
        if spec.name == "program":
            self._check_slugs(rows)
        elif spec.name == "service":
            self._check_programs_of_services(rows)
        elif spec.name == "taxonomy":
            for row in rows:
                if not row.faults:
                    self.taxonomy_names[key(row.values["id"])] = row.values["name"]
        elif spec.name == "taxonomy_term":
            self._check_term_codes(rows)

    def _check_slugs(self, rows: list[Row]) -> None:
        """A program's slug is this directory's readable key: taken from the file or made from
        the name (then made unique with a number); a slug given twice, or held by another
        program, is a fault."""
        sound = [row for row in rows if not row.faults]
        made = set()
        for row in sound:
            if "slug" not in row.values:
                row.values["slug"] = _slugify(row.values["name"])
                made.add(id(row))
        held = (
            dict(
                self.session.execute(
                    select(Program.slug, Program.id).where(Program.slug.in_({row.values["slug"] for row in sound}))
                ).all()
            )
            if sound
            else {}
        )
        for row in sound:
            slug, mine = row.values["slug"], key(row.values["id"])
            owner = self.slugs.get(slug, key(held[slug]) if slug in held else None)
            if owner is not None and owner != mine:
                if id(row) not in made:
                    row.fault("slug", "used by another program")
                    continue
                slug = row.values["slug"] = self._free_slug(slug, mine)
            self.slugs[slug] = mine

    def _free_slug(self, base: str, mine: int) -> str:
        """`base` with the first number from 2 that no other program's slug has."""
        n, owner = 2, None
        while True:
            slug = f"{base[:95]}-{n}"
            n += 1
            owner = self.slugs.get(slug) or (
                key(found) if (found := self.session.scalar(select(Program.id).where(Program.slug == slug))) else None
            )
            if owner is None or owner == mine:
                return slug

    def _check_programs_of_services(self, rows: list[Row]) -> None:
        """A service's program is a program of the service's organization."""
        wanted = {row.values["program_id"] for row in rows if row.values.get("program_id")}
        owners = self.ids.owners(IdStore.ACCEPTED["program"], wanted)  # programs of this import
        for chunk in chunks(wanted - set(owners)):
            owners.update(
                self.session.execute(select(Program.id, Program.organization_id).where(Program.id.in_(chunk))).all()
            )
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
                self._name_taxonomy(row, taxonomy_id)
            if code is None:
                continue
            scope = (key(taxonomy_id) if taxonomy_id else None, code)
            owner = self.term_codes.get(scope)
            if owner is None:
                found = self.session.scalar(
                    select(TaxonomyTerm.id).where(TaxonomyTerm.taxonomy_id == taxonomy_id, TaxonomyTerm.code == code)
                )
                owner = key(found) if found else None
            if owner is not None and owner != key(row.values["id"]):
                row.fault("code", "used by another term of this taxonomy")
            else:
                self.term_codes[scope] = key(row.values["id"])

    def _name_taxonomy(self, row: Row, taxonomy_id: uuid.UUID) -> None:
        """Give a term the name of its taxonomy (of the import, or stored), when it has one."""
        name = self.taxonomy_names.get(key(taxonomy_id)) or self.session.scalar(
            select(Taxonomy.name).where(Taxonomy.id == taxonomy_id)
        )
        if name:
            row.values["taxonomy"] = name


def _slugify(name: str) -> str:
    slug = re.sub(r"[^a-z0-9]+", "-", name.lower()).strip("-")[:100].strip("-")
    return slug or "program"
