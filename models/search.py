"""The search index: one denormalised text row per service, a word list for typo
correction, and the points where each service is offered (for near-me).

Engine-specific parts live in the migration: on SQLite an FTS5 table (`service_fts`, kept in
step with `service_search` by triggers); on PostgreSQL a weighted `tsvector` column
(`document`, generated from these columns) with a GIN index, a `tags` tsvector (generated from
`tag_text`, the filter tags of core/tags.py) with a GIN index, and a pg_trgm index on words.
"""

from __future__ import annotations

import uuid

from sqlalchemy import Float, ForeignKey, Index, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from models.base import Base


def include_in_autogenerate(obj, name, type_, reflected, compare_to) -> bool:
    """Alembic filter: leave alone what the migration makes for one engine only
    (the FTS5 tables on SQLite, the tsvector columns and their indexes on PostgreSQL, the RUM
    index included, which only a server with the extension gets)."""
    if type_ == "table" and name and name.startswith("service_fts"):
        return False
    if type_ == "column" and name in ("document", "tags") and obj.table.name == "service_search":
        return False
    if type_ == "index" and name in (
        "ix_service_search_document",
        "ix_service_search_document_rum",
        "ix_service_search_tags",
        "ix_search_word_trgm",
    ):
        return False
    return True


class ServiceSearch(Base):
    """The text of a service, by field, as search sees it."""

    __tablename__ = "service_search"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    service_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("service.id", ondelete="CASCADE"), unique=True)
    name_text: Mapped[str] = mapped_column(Text, default="")
    program_text: Mapped[str] = mapped_column(Text, default="")
    category_text: Mapped[str] = mapped_column(Text, default="")
    eligibility_text: Mapped[str] = mapped_column(Text, default="")
    area_text: Mapped[str] = mapped_column(Text, default="")
    description_text: Mapped[str] = mapped_column(Text, default="")
    organization_text: Mapped[str] = mapped_column(Text, default="")
    # Filter tags (core/tags.py): one opaque word per status, category, town, language, ...
    tag_text: Mapped[str] = mapped_column(Text, default="", server_default="")


class SearchChange(Base):
    """One change of a service's search row, in commit order (written by a trigger on
    `service_search`, migration 0014): what each process's ranking index (core.ranking) catches
    up from. `service_id` NULL: rebuild the whole index (`flask search reindex`)."""

    __tablename__ = "search_change"
    __table_args__ = {"sqlite_autoincrement": True}

    seq: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    service_id: Mapped[uuid.UUID | None] = mapped_column(nullable=True)


class SearchWord(Base):
    """Every word in the indexed text, for typo correction."""

    __tablename__ = "search_word"

    word: Mapped[str] = mapped_column(String(64), primary_key=True)


class SearchWordVariant(Base):
    """A word with one letter deleted, pointing at the word (symmetric-delete typo lookup)."""

    __tablename__ = "search_word_variant"

    variant: Mapped[str] = mapped_column(String(64), primary_key=True)
    word: Mapped[str] = mapped_column(ForeignKey("search_word.word", ondelete="CASCADE"), primary_key=True)


class ServicePoint(Base):
    """A place a service is offered, with coordinates (from the location or its ZIP centroid)."""

    __tablename__ = "service_point"
    __table_args__ = (Index("ix_service_point_lat_lon", "latitude", "longitude"),)

    service_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("service.id", ondelete="CASCADE"), primary_key=True)
    location_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("location.id", ondelete="CASCADE"), primary_key=True)
    latitude: Mapped[float] = mapped_column(Float)
    longitude: Mapped[float] = mapped_column(Float)
