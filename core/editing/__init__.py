"""Program staff keep the directory true: create, replace, patch and retire services, verify
them and set their capacity, through the API.

Every write here:
- is checked by the rules of `flask hsds import` (core.hsds.importer.Importer, on the record
  flattened the same way): a fault is an InvalidData naming each field, and the caller rolls
  back, so nothing changes;
- names the version it changes (`if_match`, the record's ETag): none is PreconditionRequired,
  an older one PreconditionFailed;
- gives the record a new ETag (a digest of what it shows), is reindexed for search before it returns, writes one
  RecordHistory row (who, when, each field from and to), and changes the data version
  (core.directory_version notices the ORM and Core writes of the transaction).

Who may write: a `directory:admin` key anything; a `directory:write` key only the services of
its own programs (and what hangs on them). The caller owns the transaction.

The package, by part:

- `access`: scopes, ETags and If-Match, what a key may write, the shared-locations guard.
- `changes`: the changes a write made, kept as RecordHistory (a record's history).
- `services`: create, replace, patch, retire and verify a service.
- `capacity`: a service's capacity status, as set and as served.
- `records`: save and delete organizations, programs, terms, locations, services at locations.
"""

from __future__ import annotations

from core.editing.access import (
    ADMIN,
    WRITE,
    SharedLocationsGuard,
    check_version,
    editable_service,
    is_admin,
    location_editable,
    may_edit_program,
    record_etag,
)
from core.editing.capacity import (
    ACCEPTING_NEW,
    CAPACITY_FIELDS,
    capacity_status,
    fresh_capacity_condition,
    set_capacity,
    settings,
)
from core.editing.changes import UNTRACKED, changes_between, history
from core.editing.records import SERVER_FIELDS_OF, delete_record, save_record
from core.editing.services import (
    SERVER_FIELDS,
    Serializer,
    create_service,
    merge_patch,
    patch_service,
    replace_service,
    retire_service,
    stale_services,
    verify_service,
)

__all__ = [
    "ACCEPTING_NEW",
    "ADMIN",
    "CAPACITY_FIELDS",
    "SERVER_FIELDS",
    "SERVER_FIELDS_OF",
    "UNTRACKED",
    "WRITE",
    "Serializer",
    "SharedLocationsGuard",
    "capacity_status",
    "changes_between",
    "check_version",
    "create_service",
    "delete_record",
    "editable_service",
    "fresh_capacity_condition",
    "history",
    "is_admin",
    "location_editable",
    "may_edit_program",
    "merge_patch",
    "patch_service",
    "record_etag",
    "replace_service",
    "retire_service",
    "save_record",
    "set_capacity",
    "settings",
    "stale_services",
    "verify_service",
]
