"""Taxonomies and their terms (HSDS `taxonomy`, `taxonomy_term`)."""

from __future__ import annotations

import uuid

from sqlalchemy import ForeignKey, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

from models.base import Base, new_id


class Taxonomy(Base):
    __tablename__ = "taxonomy"

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_id)
    name: Mapped[str] = mapped_column(String(255))
    description: Mapped[str] = mapped_column(Text)
    uri: Mapped[str | None] = mapped_column(String(2048))
    version: Mapped[str | None] = mapped_column(String(64))

    terms: Mapped[list[TaxonomyTerm]] = relationship(back_populates="taxonomy_detail")


class TaxonomyTerm(Base):
    __tablename__ = "taxonomy_term"
    __table_args__ = (UniqueConstraint("taxonomy_id", "code", name="uq_taxonomy_term_taxonomy_code"),)

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_id)
    taxonomy_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("taxonomy.id"), index=True)
    parent_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("taxonomy_term.id"), index=True)
    code: Mapped[str | None] = mapped_column(String(128), index=True)
    name: Mapped[str] = mapped_column(String(255))
    description: Mapped[str] = mapped_column(Text)
    taxonomy: Mapped[str | None] = mapped_column(String(255))
    language: Mapped[str | None] = mapped_column(String(16))
    term_uri: Mapped[str | None] = mapped_column(String(2048))
    # Cross-walk to the HL7 FHIR service-type code system, where one fits.
    hl7_service_type_code: Mapped[str | None] = mapped_column(String(32))
    hl7_service_type_display: Mapped[str | None] = mapped_column(String(255))

    taxonomy_detail: Mapped[Taxonomy | None] = relationship(back_populates="terms")
    parent: Mapped[TaxonomyTerm | None] = relationship(remote_side=[id])
