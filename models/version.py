"""The directory's data version: one row, changed by every transaction that writes the directory."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import String
from sqlalchemy.orm import Mapped, mapped_column

from models.base import Base, UTCDateTime, utcnow


class DirectoryVersion(Base):
    """`tag` is a random token set anew by each committed directory write (core/directory_version.py);
    `changed_at` is when. Caches key on the tag, so a write anywhere makes them miss everywhere."""

    __tablename__ = "directory_version"

    id: Mapped[int] = mapped_column(primary_key=True)
    tag: Mapped[str] = mapped_column(String(32))
    changed_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
