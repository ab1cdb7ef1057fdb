"""HSDS 3.0 import and export: tabular data packages and files of full service records.

**Import** reads a tabular data package (a folder with `datapackage.json` and one CSV file per
table, as in HSDS's `examples/csv/`) or a JSON / NDJSON file of full service records (nested
records are flattened into the same table rows). Every row is checked: types, UUIDs, required
fields, vocabularies, lengths the database holds, coordinates in range, and every reference
(to a row of the import or of the database). Rows are upserted by id. `strict` (the default):
any fault and nothing is written; otherwise the sound rows are written and each row that
refers to a rejected row is rejected too, naming it.

**Export** writes every stored row to a data package that imports back to the same records.

The caller owns the transaction: commit when `ImportReport.ok` (or not strict), else roll back.

The modules, in the order an import goes through them:

- `profile`: the field catalogue (which tables and fields are stored, their rules, how they
  nest in a full record) and `HSDS_VERSION`; everything else derives from it;
- `readers`: the CSV files of a package, and JSON / NDJSON records (`flatten`), in batches;
- `values`: one parser per kind of value, then the field's rules;
- `importer`: the checks of a batch (fields, references, parents first) and the reindexing
  at the end; `rules`: the rules of a table beyond its fields (slugs, term codes, a
  service's program); `ids`: what it remembers between batches, kept by the database;
- `writer`: the batched writer (upserts by id) it shares with `core.bulk`;
- `report`: what the user is told;
- `export`: the package written back out.
"""

from core.hsds.export import describe_package, export_package
from core.hsds.profile import HSDS_VERSION
from core.hsds.readers import import_path
from core.hsds.report import ImportReport

__all__ = ["HSDS_VERSION", "ImportReport", "describe_package", "export_package", "import_path"]
