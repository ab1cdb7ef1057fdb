"""Export: every stored row of the catalogue's tables, as an HSDS tabular data package that
imports back to the same records."""

from __future__ import annotations

import csv
import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from core.hsds.profile import HSDS_VERSION, PACKAGE_FILE, PACKAGE_VERSION, TABLES, Field, TableSpec
from core.hsds.writer import BATCH_SIZE

EXTENSION = f"Extension of this directory (not in HSDS {HSDS_VERSION})."
# A field's kind -> its Table Schema type and format.
TYPES = {
    "uuid": ("string", "uuid"),
    "string": ("string", None),
    "number": ("number", None),
    "integer": ("integer", None),
    "boolean": ("boolean", None),
    "datetime": ("datetime", None),
}


def export_package(session: Session, folder: Path) -> dict[str, int]:
    """Write every stored row as an HSDS tabular data package in `folder`; return rows per table."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    counts = {spec.name: _export_table(session, spec, folder / spec.path) for spec in TABLES}
    (folder / PACKAGE_FILE).write_text(json.dumps(describe_package(), indent=2) + "\n", encoding="utf-8")
    return counts


def _export_table(session: Session, spec: TableSpec, path: Path) -> int:
    """Write one table's CSV file, in order of id (of key, for a table without one); return its rows."""
    table = spec.table
    names = [f.name for f in spec.fields]
    order = [table.c.id] if "id" in table.c else [table.c[name] for name in names]
    query = select(*[table.c[name] for name in names]).order_by(*order).execution_options(yield_per=BATCH_SIZE)
    count = 0
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle, lineterminator="\r\n")
        writer.writerow(names)
        for row in session.execute(query):
            writer.writerow([_cell(value) for value in row])
            count += 1
    return count


def _cell(value: Any) -> str:
    """A value as CSV text that the import reads back to the same value."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, datetime):
        return value.astimezone(UTC).isoformat()
    if isinstance(value, float):
        return repr(value)
    return str(value)


def describe_package() -> dict:
    """The `datapackage.json` of an export: HSDS's resources and this directory's extensions."""
    return {
        "name": "human_services_data",
        "title": "Human Services Data Specification",
        "profile": "tabular-data-package",
        "version": PACKAGE_VERSION,
        "homepage": "http://docs.openreferral.org",
        "resources": [_resource(spec) for spec in TABLES],
    }


def _resource(spec: TableSpec) -> dict[str, Any]:
    """One table's resource: its file and its Table Schema (fields, keys, references)."""
    schema: dict[str, Any] = {"fields": [_field_schema(f) for f in spec.fields]}
    schema["primaryKey"] = "id" if "id" in spec.table.c else ["service_area_id", "town"]
    keys = [{"fields": f.name, "reference": {"resource": f.ref, "fields": "id"}} for f in spec.fields if f.ref]
    if keys:
        schema["foreignKeys"] = keys
    resource = {
        "name": spec.name,
        "path": spec.path,
        "format": "csv",
        "mediatype": "text/csv",
        "encoding": "utf-8",
        "profile": "tabular-data-resource",
        "schema": schema,
    }
    if spec.extension:
        resource["description"] = EXTENSION
    return resource


def _field_schema(f: Field) -> dict[str, Any]:
    """One field of a Table Schema: name, type, format and constraints."""
    kind, fmt = TYPES[f.kind]
    entry: dict[str, Any] = {"name": f.name, "type": kind}
    if fmt or f.format in ("email", "uri"):
        entry["format"] = fmt or f.format
    entry["constraints"] = _constraints(f)
    if f.extension:
        entry["description"] = EXTENSION
    return entry


def _constraints(f: Field) -> dict[str, Any]:
    constraints: dict[str, Any] = {"required": f.required}
    if f.choices:
        constraints["enum"] = list(f.choices)
    if f.max_length:
        constraints["maxLength"] = f.max_length
    if f.low is not None:
        constraints["minimum"] = f.low
    if f.high is not None:
        constraints["maximum"] = f.high
    return constraints
