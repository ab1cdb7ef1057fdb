"""What an import tells its user: each rejected row with the reason, what was not stored, totals."""

from __future__ import annotations

import uuid
from collections import Counter
from dataclasses import dataclass, field

from core.hsds.profile import table_order


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
    """The outcome of one import, filled in as it goes (see `lines` for how it reads)."""

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
        """Whether rows are written: always, unless a strict import found a fault."""
        return not (self.strict and self.faults)

    def lines(self) -> list[str]:
        """The report, one line per fault (in strict mode the rows rejected only because a row
        they name was rejected are counted, not listed), then what was not stored, then totals."""
        shown = [f for f in self.faults if not (self.strict and f.dependent)]
        out = [str(fault) for fault in shown]
        out += self._not_stored_lines()
        if self.strict and self.faults:
            hidden = len(self.faults) - len(shown)
            more = f" ({hidden} more faults in rows that name them)" if hidden else ""
            out.append(f"Nothing imported: {len(shown)} faults{more}.")
        else:
            out += self._open_referral_lines()
            out.append(self._totals())
        return out

    def _not_stored_lines(self) -> list[str]:
        return [
            f"{source}{what}: {count} {unit} not imported: not stored by this directory"
            for (source, what, unit), count in sorted(self.not_stored.items())
        ]

    def _open_referral_lines(self) -> list[str]:
        return [
            f"service {service_id} ({name}): {', '.join(changed)} changed; {count} open referrals "
            "stay with the program they were sent to"
            for service_id, name, changed, count in self.with_open_referrals
        ]

    def _totals(self) -> str:
        tables = sorted(set(self.inserted) | set(self.updated) | set(self.unchanged), key=table_order)
        parts = [
            f"{name}: {self.inserted[name]} new, {self.updated[name]} updated, {self.unchanged[name]} unchanged"
            for name in tables
        ]
        rejected = f"; {self.rejected_rows} rows rejected" if self.faults else ""
        return "Imported " + ("; ".join(parts) or "nothing") + rejected + "."
