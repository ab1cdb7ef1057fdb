"""Reading an import: a tabular data package (CSV), or a JSON / NDJSON file of full records.

A data package is a folder with `datapackage.json` and one CSV file per table, as in HSDS's
`examples/csv/`. Its tables are read one at a time, parents first (taxonomies, terms,
organizations, programs, locations, ... attributes), streamed in batches of `BATCH_SIZE` rows:
a reference can then only point at a table already read, so one pass suffices. Organizations
and taxonomy terms, which may name a row of their own table, are read in batches too: a row
whose parent comes later in the file waits for it, in the next batch.

A JSON file holds full service records, as this API answers them (an array, one record, or a
`Page` with `contents`); an NDJSON file one record a line. Each nested record is flattened
(`flatten`) into the rows of the tables above, and the records are read in batches.

Memory does not grow with the import: the reader holds one batch, the `Importer` keeps what it
must remember in the database (`core.hsds.ids`).
"""

from __future__ import annotations

import csv
import json
from collections import defaultdict
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any

from sqlalchemy.orm import Session

from core.errors import InvalidData
from core.hsds.importer import Importer, Row
from core.hsds.profile import (
    BY_NAME,
    COMPUTED,
    NAMED_BY,
    NESTED,
    NOT_STORED_LISTS,
    PACKAGE_FILE,
    SHAPED,
    TABLES,
    TableSpec,
)
from core.hsds.report import Fault, ImportReport
from core.hsds.writer import BATCH_SIZE
from schemas.text import text_problem

CSV_FIELD_LIMIT = 1 << 24
READ_SIZE = 1 << 16  # characters of a JSON array read at a time


def import_path(session: Session, path: Path, strict: bool = True) -> ImportReport:
    """Import a data package folder (or its datapackage.json), or a .json / .ndjson / .jsonl
    file of full service records. Raises InvalidData when the input cannot be read at all.

    The caller owns the transaction: commit when `ImportReport.ok` (or not strict), else roll back.
    """
    path = Path(path)
    if path.is_dir() or path.name == PACKAGE_FILE:
        return import_package(session, path if path.is_dir() else path.parent, strict)
    if not path.is_file():
        raise InvalidData(f"{path.name}: no such file or folder.")
    return import_records(session, path, strict)


# --------------------------------------------------------------------------- data packages


def import_package(session: Session, folder: Path, strict: bool = True) -> ImportReport:
    """Import an HSDS tabular data package, table by table, parents first."""
    resources = _resources(folder)
    importer = Importer(session, strict)
    _count_tables_not_stored(importer, folder, resources)
    for spec in TABLES:
        relative = resources.get(spec.name)
        if relative is not None:
            _import_table(importer, spec, folder, relative)
    return importer.finish()


def _resources(folder: Path) -> dict[str, str]:
    """The package's resources (name -> path), each path checked to be a file inside `folder`."""
    descriptor = folder / PACKAGE_FILE
    try:
        package = json.loads(descriptor.read_text(encoding="utf-8"))
        resources = {resource["name"]: resource["path"] for resource in package["resources"]}
    except FileNotFoundError as exc:
        raise InvalidData(f"{folder.name}: no {PACKAGE_FILE} in this folder.") from exc
    except (ValueError, KeyError, TypeError) as exc:
        raise InvalidData(
            f"{PACKAGE_FILE}: not a data package (a JSON object with named resources and paths)."
        ) from exc
    for name, relative in resources.items():
        _check_inside(folder, name, relative)
    return resources


def _count_tables_not_stored(importer: Importer, folder: Path, resources: dict[str, str]) -> None:
    """Report the rows of tables this directory does not store (never silently dropped)."""
    for name, relative in resources.items():
        if name not in BY_NAME:
            rows = sum(1 for _ in _csv_rows(folder / relative)) if (folder / relative).is_file() else 0
            importer.report.not_stored[(str(relative), "", "rows")] += rows


def _import_table(importer: Importer, spec: TableSpec, folder: Path, relative: str) -> None:
    """Give the rows of one CSV file to the importer, a batch at a time; rows waiting for a
    parent further on go again with the next batch."""
    csv_path = folder / relative
    if not csv_path.is_file():
        raise InvalidData(f"{relative}: named in {PACKAGE_FILE} but not in the folder.")
    waiting: list[Row] = []
    batch: list[Row] = []
    for line, raw in _csv_rows(csv_path):
        batch.append(Row(str(relative), line, raw))
        if len(batch) == BATCH_SIZE:
            waiting = importer.add(spec, waiting + batch, more=True)
            batch = []
    if batch or waiting:
        importer.add(spec, waiting + batch)


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
            _ = reader.fieldnames  # reads the header
            line = reader.line_num + 1
            for raw in reader:
                yield line, {key: value for key, value in raw.items() if key is not None}
                line = reader.line_num + 1
        except UnicodeDecodeError:
            # The text is decoded in blocks ahead of the CSV reader: no line can be named.
            raise InvalidData(f"{path.name}: not UTF-8 text.") from None
        except csv.Error as exc:  # the message names the problem (a NUL, a field too large), not the data
            raise InvalidData(f"{path.name} line {line}: not CSV ({exc}).") from None


# --------------------------------------------------------------------------- full records


def flatten(
    record: dict,
    source: str,
    line: int,
    table: str = "service",
    prefix: str = "",
    rows: dict[str, list[Row]] | None = None,
    report: ImportReport | None = None,
) -> dict[str, list[Row]]:
    """The table rows of one nested record (a full HSDS service, as this API answers it), added
    to `rows`. Lists the directory does not store are counted in `report`."""
    rows = rows if rows is not None else defaultdict(list)
    own = _own_fields(record, table)
    _drop_lists_not_stored(own, source, prefix, report)
    me = Row(source, line, own, prefix)
    rows[table].append(me)
    for key, child, parent_key in NESTED.get(table, []):
        _flatten_nested(me, record, table, key, child, parent_key, rows, report)
    if table == "service_area":
        _flatten_towns(me, record, rows)
    return rows


def _own_fields(record: dict, table: str) -> dict[str, Any]:
    """The record's own fields: not the records nested in it, not what the API works out; a
    field of another shape (`SHAPED`) given as the columns it fills."""
    nested = {key for key, _, _ in NESTED.get(table, [])}
    skipped = nested | COMPUTED | ({"towns"} if table == "service_area" else set())
    own = {key: value for key, value in record.items() if key not in skipped}
    for name, columns in SHAPED.get(table, {}).items():
        shaped = record.get(name)
        if isinstance(shaped, dict):
            for part, column in columns.items():
                own[column] = shaped.get(part)
    return own


def _drop_lists_not_stored(own: dict[str, Any], source: str, prefix: str, report: ImportReport | None) -> None:
    for key in list(own):
        if isinstance(own[key], list) and key in NOT_STORED_LISTS:
            if report is not None and own[key]:
                report.not_stored[(source, f" field {prefix}{key}", "records")] += len(own[key])
            del own[key]


def _flatten_nested(
    me: Row,
    record: dict,
    table: str,
    key: str,
    child: str,
    parent_key: str | None,
    rows: dict[str, list[Row]],
    report: ImportReport | None,
) -> None:
    """Flatten the records nested under `key`. A list item takes the record's id as its parent
    id (`parent_key`); a record the record names (its organization, ...) gives it its id."""
    value = record.get(key)
    if value in (None, [], {}):
        return
    record_id = record.get("id")
    items = value if isinstance(value, list) else [value]
    for index, item in enumerate(items):
        where = f"{me.prefix}{key}[{index}]." if isinstance(value, list) else f"{me.prefix}{key}."
        if not isinstance(item, dict):
            me.faults.append(Fault(me.source, me.line, where.rstrip("."), "not a record"))
            continue
        if parent_key is not None and record_id is None:
            continue  # a record without an id is refused (id: required), and what it holds with it
        item = dict(item)
        if parent_key is not None:
            item.setdefault(parent_key, record_id)
            if child == "attribute":
                item.setdefault("link_entity", table)
        flatten(item, me.source, me.line, child, where, rows, report)
        if parent_key is None and isinstance(item.get("id"), str):
            me.raw.setdefault(NAMED_BY[child], item["id"])


def _flatten_towns(me: Row, record: dict, rows: dict[str, list[Row]]) -> None:
    """An area's towns (this directory's extension) as rows of service_area_town."""
    record_id, towns = record.get("id"), record.get("towns")
    if not isinstance(towns, list) or record_id is None:
        return
    for index, town in enumerate(towns):
        raw = {"service_area_id": record_id, "town": town}
        rows["service_area_town"].append(Row(me.source, me.line, raw, f"{me.prefix}towns[{index}]."))


def import_records(session: Session, path: Path, strict: bool = True) -> ImportReport:
    """Import a JSON file (an array of full service records, one record, or a `Page` with
    `contents`) or an NDJSON file (one record a line), in batches of records."""
    importer = Importer(session, strict)
    source = path.name
    batch: list[tuple[int, Any]] = []
    for line, record in _records(path):
        batch.append((line, record))
        if len(batch) == BATCH_SIZE:
            add_records(importer, source, batch)
            batch = []
    if batch:
        add_records(importer, source, batch)
    return importer.finish()


def add_records(importer: Importer, source: str, records: list[tuple[int, Any]]) -> None:
    """Give a batch of full service records ((line, record)) to the importer, table by table."""
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
    """The records of a file, read the way its first line says: NDJSON (or a .ndjson / .jsonl
    name), a JSON array, or one JSON document."""
    with path.open(encoding="utf-8-sig") as handle:
        first = ""
        while not first.strip():
            first = handle.readline()
            if not first:
                return
        handle.seek(0)
        head = first.lstrip()
        if path.suffix in (".ndjson", ".jsonl") or (head.startswith("{") and _is_json(first)):
            yield from _lines(handle, path.name)
        elif head.startswith("["):
            yield from _ArrayItems(handle, path.name)
        else:
            yield from _document(handle, path.name)


def _lines(handle: IO[str], name: str) -> Iterator[tuple[int, Any]]:
    """One record a line; blank lines are passed over."""
    for line, text in enumerate(handle, start=1):
        if text.strip():
            try:
                yield line, json.loads(text)
            except ValueError:
                raise InvalidData(f"{name} line {line}: not JSON.") from None


def _document(handle: IO[str], name: str) -> Iterator[tuple[int, Any]]:
    """One record, or the `contents` of a Page."""
    try:
        document = json.load(handle)
    except ValueError:
        raise InvalidData(f"{name}: not JSON.") from None
    items = document.get("contents") if isinstance(document, dict) and "contents" in document else [document]
    for item in items if isinstance(items, list) else [items]:
        yield 1, item


def _is_json(text: str) -> bool:
    try:
        json.loads(text)
    except ValueError:
        return False
    return True


class _ArrayItems:
    """The items of a top-level JSON array, decoded one at a time from a sliding buffer, each
    with the line it starts on."""

    def __init__(self, handle: IO[str], name: str) -> None:
        self.handle, self.name = handle, name
        self.decoder = json.JSONDecoder()
        self.buffer, self.position, self.line = "", 0, 1
        self.started = self.done = False

    def __iter__(self) -> Iterator[tuple[int, Any]]:
        while self._skip_to_item():
            item, end = self._decode()
            yield self.line, item
            self.line += self.buffer.count("\n", self.position, end)
            self.position = end

    def _read_more(self) -> bool:
        """Add the next piece of the file to what is left of the buffer; False at its end."""
        chunk = self.handle.read(READ_SIZE)
        if not chunk:
            return False
        self.buffer, self.position = self.buffer[self.position :] + chunk, 0
        return True

    def _skip_to_item(self) -> bool:
        """Pass what lies between items; False at the end of the array (or of the file)."""
        while True:
            self._skip_separators()
            if self.done:
                return False
            if self.position < len(self.buffer):
                return True
            if not self._read_more():
                return False

    def _skip_separators(self) -> None:
        """Pass blanks, commas and brackets, counting lines; a second `[` is not an array of records."""
        buffer, position = self.buffer, self.position
        while position < len(buffer) and buffer[position] in " \t\r\n,[]":
            char = buffer[position]
            if char == "\n":
                self.line += 1
            elif char == "[":
                if self.started:
                    raise InvalidData(f"{self.name} line {self.line}: not an array of records.")
                self.started = True
            elif char == "]":
                self.done = True
            position += 1
        self.position = position

    def _decode(self) -> tuple[Any, int]:
        """The next item and where it ends, reading more of the file until it is whole."""
        while True:
            try:
                return self.decoder.raw_decode(self.buffer, self.position)
            except ValueError:
                if not self._read_more():
                    raise InvalidData(f"{self.name} line {self.line}: not JSON.") from None
