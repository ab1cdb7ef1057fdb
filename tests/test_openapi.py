"""The committed openapi.yaml is what the code generates; /docs works offline."""

from __future__ import annotations

import re
from pathlib import Path

import yaml
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext

from api.extensions import db
from models import Base
from models.search import include_in_autogenerate

ROOT = Path(__file__).resolve().parents[1]


def test_openapi_yaml_matches_the_code(empty_app, tmp_path):
    out = tmp_path / "openapi.yaml"
    result = empty_app.test_cli_runner().invoke(args=["openapi", "write", "--format=yaml", str(out)])
    assert result.exit_code == 0, result.output
    generated = yaml.safe_load(out.read_text())
    committed = yaml.safe_load((ROOT / "openapi.yaml").read_text())
    assert generated == committed, "openapi.yaml is stale: run `make openapi` and commit it"


def test_every_operation_has_a_summary_for_api_users(empty_app):
    spec = empty_app.test_client().get("/openapi.json").get_json()
    for path, operations in spec["paths"].items():
        for method, operation in operations.items():
            if method == "parameters":
                continue
            assert operation.get("summary"), f"{method.upper()} {path} has no summary"


def test_docs_render_from_local_assets(empty_app):
    client = empty_app.test_client()
    page = client.get("/docs")
    assert page.status_code == 200
    html = page.get_data(as_text=True)
    assets = re.findall(r'(?:src|href)="([^"]+)"', html)
    assert assets, "the docs page loads Swagger UI"
    for asset in assets:
        assert asset.startswith("/"), f"{asset} would need the internet"
        assert client.get(asset).status_code == 200, asset
    assert re.search(r'url:\s*"/openapi.json"', html) or "/openapi.json" in html


def test_migrations_match_the_models(empty_app):
    """Migrations create exactly the schema the models describe, on both engines."""
    with empty_app.app_context(), db.engine.connect() as connection:
        context = MigrationContext.configure(connection, opts={"include_object": include_in_autogenerate})
        diff = compare_metadata(context, Base.metadata)
    assert diff == []
