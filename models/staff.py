"""Staff accounts of the web app. Each is backed by an ApiClient row (with no usable key)
whose scopes come from the role, so core's visibility and lifecycle rules apply unchanged."""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import Boolean, ForeignKey, Integer, String
from sqlalchemy.orm import Mapped, mapped_column, relationship

from models.base import Base, UTCDateTime, new_id, utcnow
from models.directory import Program
from models.referrals import ApiClient


class StaffUser(Base):
    __tablename__ = "staff_user"

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_id)
    email: Mapped[str] = mapped_column(String(254), unique=True)  # stored lower-cased
    password_hash: Mapped[str] = mapped_column(String(255))
    role: Mapped[str] = mapped_column(String(32))  # coordinator, program_staff, admin
    program_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("program.id"))
    client_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("api_client.id"), unique=True)
    disabled: Mapped[bool] = mapped_column(Boolean, default=False)
    failed_logins: Mapped[int] = mapped_column(Integer, default=0)
    locked_until: Mapped[datetime | None] = mapped_column(UTCDateTime)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    last_sign_in_at: Mapped[datetime | None] = mapped_column(UTCDateTime)

    client: Mapped[ApiClient] = relationship(lazy="joined")
    program: Mapped[Program | None] = relationship(lazy="joined")
