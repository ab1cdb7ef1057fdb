"""The history of the directory's writes through the API: who changed what, from and to."""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import JSON, ForeignKey, Index, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from models.base import Base, UTCDateTime, new_id, utcnow


class RecordHistory(Base):
    """One write of one record: its kind and id, the client, when, and each field changed."""

    __tablename__ = "record_history"
    __table_args__ = (Index("ix_record_history_record", "record_type", "record_id", "at"),)

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_id)
    record_type: Mapped[str] = mapped_column(String(32))
    record_id: Mapped[uuid.UUID] = mapped_column()
    action: Mapped[str] = mapped_column(String(16))  # create, replace, patch, delete, verify, capacity
    client_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("api_client.id"))
    client_name: Mapped[str] = mapped_column(String(255))
    at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    changes: Mapped[list] = mapped_column(JSON, default=list)  # [{"field", "from", "to"}]
    note: Mapped[str | None] = mapped_column(Text)
