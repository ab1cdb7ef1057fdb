"""Validators for the HSDS 3.0 compiled schemas (Draft 2020-12, format checking on)."""
from __future__ import annotations

import json
from functools import lru_cache
from pathlib import Path

from jsonschema import Draft202012Validator
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT202012

HSDS = Path(__file__).resolve().parents[1].parent / "shared" / "hsds-3.0" / "schema"


@lru_cache(maxsize=None)
def validator(name: str) -> Draft202012Validator:
    """`name` is a file under schema/compiled/ or schema/ (`service`, `taxonomy_term`, ...)."""
    path = HSDS / "compiled" / f"{name}.json"
    if not path.exists():
        path = HSDS / f"{name}.json"
    schema = json.loads(path.read_text())
    return Draft202012Validator(schema, registry=_registry(), format_checker=Draft202012Validator.FORMAT_CHECKER)


@lru_cache(maxsize=None)
def _registry() -> Registry:
    """The uncompiled taxonomy schemas refer to `taxonomy.json` and `metadata.json` by name;
    `metadata.json` is not shipped, so its compiled form (inside service.json) stands in."""
    metadata = json.loads((HSDS / "compiled" / "service.json").read_text())["properties"]["metadata"]["items"]
    taxonomy = json.loads((HSDS / "taxonomy.json").read_text())
    return Registry().with_resources(
        [
            ("taxonomy.json", Resource.from_contents(taxonomy, default_specification=DRAFT202012)),
            ("metadata.json", Resource.from_contents(metadata, default_specification=DRAFT202012)),
        ]
    )


@lru_cache(maxsize=None)
def page_validator() -> Draft202012Validator:
    spec = json.loads((HSDS / "openapi.json").read_text())
    page = dict(spec["components"]["schemas"]["Page"])
    page["required"] = list(page["properties"])
    page["properties"] = {**page["properties"], "contents": {"type": "array"}}
    return Draft202012Validator(page)


@lru_cache(maxsize=None)
def program_validator() -> Draft202012Validator:
    program = json.loads((HSDS / "compiled" / "service.json").read_text())["properties"]["program"]
    return Draft202012Validator(program, format_checker=Draft202012Validator.FORMAT_CHECKER)


def errors(v: Draft202012Validator, body) -> list[str]:
    return [f"{'/'.join(map(str, e.absolute_path))}: {e.message}" for e in v.iter_errors(body)]
