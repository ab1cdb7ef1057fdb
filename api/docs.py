"""Swagger UI's own files, served locally so that /docs works with no internet."""

from flask import Blueprint, send_from_directory
from swagger_ui_bundle import swagger_ui_path

assets = Blueprint("docs_assets", __name__)


@assets.get("/docs/assets/<path:filename>")
def swagger_ui_asset(filename: str):
    return send_from_directory(swagger_ui_path, filename, max_age=86400)
