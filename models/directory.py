"""Organizations, programs, services and the records hung on them (HSDS 3.0)."""

from __future__ import annotations

import uuid
from datetime import date, datetime

from sqlalchemy import Boolean, Date, Float, ForeignKey, Index, Integer, String, Text, and_
from sqlalchemy.orm import Mapped, foreign, mapped_column, relationship

from models.base import Base, UTCDateTime, new_id, utcnow
from models.taxonomy import TaxonomyTerm


class Organization(Base):
    __tablename__ = "organization"

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_id)
    name: Mapped[str] = mapped_column(String(255))
    alternate_name: Mapped[str | None] = mapped_column(String(255))
    description: Mapped[str] = mapped_column(Text)
    email: Mapped[str | None] = mapped_column(String(255))
    website: Mapped[str | None] = mapped_column(String(2048))
    parent_organization_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("organization.id"), index=True)
    last_modified: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    phones: Mapped[list[Phone]] = relationship(
        # The organization's own phones, not those of its locations or contacts.
        primaryjoin="and_(Phone.organization_id == Organization.id, Phone.service_id.is_(None), "
        "Phone.location_id.is_(None), Phone.contact_id.is_(None))",
        viewonly=True,
        order_by="Phone.number",
    )
    contacts: Mapped[list[Contact]] = relationship(
        primaryjoin="and_(Contact.organization_id == Organization.id, Contact.service_id.is_(None))",
        viewonly=True,
        order_by="Contact.name",
    )
    locations: Mapped[list[Location]] = relationship(back_populates="organization", order_by="Location.name")
    programs: Mapped[list[Program]] = relationship(back_populates="organization", order_by="Program.name")
    services: Mapped[list[Service]] = relationship(back_populates="organization", order_by="Service.name")


class Program(Base):
    __tablename__ = "program"

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_id)
    slug: Mapped[str] = mapped_column(String(100), unique=True)
    organization_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("organization.id"), index=True)
    name: Mapped[str] = mapped_column(String(255))
    alternate_name: Mapped[str | None] = mapped_column(String(255))
    description: Mapped[str] = mapped_column(Text)
    last_modified: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    organization: Mapped[Organization] = relationship(back_populates="programs")
    services: Mapped[list[Service]] = relationship(back_populates="program", order_by="Service.name")


class Service(Base):
    __tablename__ = "service"
    # Lists in name order walk one of these indexes and stop at the page: by status alone, or
    # checking each service against the index criteria (filter tags) as they go.
    __table_args__ = (Index("ix_service_status_name", "status", "name"), Index("ix_service_name_id", "name", "id"))

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_id)
    organization_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("organization.id"), index=True)
    program_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("program.id"), index=True)
    name: Mapped[str] = mapped_column(String(255))
    alternate_name: Mapped[str | None] = mapped_column(String(255))
    description: Mapped[str | None] = mapped_column(Text)
    url: Mapped[str | None] = mapped_column(String(2048))
    email: Mapped[str | None] = mapped_column(String(255))
    status: Mapped[str] = mapped_column(String(32), default="active", index=True)
    interpretation_services: Mapped[str | None] = mapped_column(Text)
    application_process: Mapped[str | None] = mapped_column(Text)
    fees_description: Mapped[str | None] = mapped_column(Text)
    eligibility_description: Mapped[str | None] = mapped_column(Text)
    minimum_age: Mapped[float | None] = mapped_column(Float)
    maximum_age: Mapped[float | None] = mapped_column(Float)
    alert: Mapped[str | None] = mapped_column(Text)
    # Extension: whether the service takes referrals of a child at all.
    accepts_referrals: Mapped[bool] = mapped_column(Boolean, default=False)
    # HSDS 3.0: when a person last checked the whole record, and who (models.curation).
    assured_date: Mapped[date | None] = mapped_column(Date, index=True)
    assurer_email: Mapped[str | None] = mapped_column(String(255))
    # Availability (HSDS 3.1 service_capacity; the status is an SDOH capacity code).
    capacity_status: Mapped[str | None] = mapped_column(String(40))
    capacity_available: Mapped[float | None] = mapped_column(Float)
    capacity_maximum: Mapped[float | None] = mapped_column(Float)
    capacity_unit: Mapped[str | None] = mapped_column(String(100))
    capacity_wait_days: Mapped[int | None] = mapped_column(Integer)
    capacity_description: Mapped[str | None] = mapped_column(Text)
    capacity_updated: Mapped[datetime | None] = mapped_column(UTCDateTime)
    last_modified: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, index=True)

    organization: Mapped[Organization] = relationship(back_populates="services")
    program: Mapped[Program | None] = relationship(back_populates="services")
    phones: Mapped[list[Phone]] = relationship(
        primaryjoin="and_(Phone.service_id == Service.id, Phone.contact_id.is_(None))",
        viewonly=True,
        order_by="Phone.number",
    )
    contacts: Mapped[list[Contact]] = relationship(back_populates="service", order_by="Contact.name")
    schedules: Mapped[list[Schedule]] = relationship(back_populates="service")
    service_areas: Mapped[list[ServiceArea]] = relationship(
        back_populates="service", order_by="ServiceArea.name", cascade="all, delete-orphan"
    )
    languages: Mapped[list[Language]] = relationship(back_populates="service", order_by="Language.code")
    service_at_locations: Mapped[list[ServiceAtLocation]] = relationship(back_populates="service")
    attributes: Mapped[list[Attribute]] = relationship(
        primaryjoin=lambda: and_(foreign(Attribute.link_id) == Service.id, Attribute.link_entity == "service"),
        viewonly=True,
        order_by=lambda: Attribute.id,
    )
    referral_contact_points: Mapped[list[ReferralContactPoint]] = relationship(
        back_populates="service",
        # id last: points of one purpose and channel come in the same order on every engine and after an import.
        order_by="(ReferralContactPoint.purpose, ReferralContactPoint.channel, ReferralContactPoint.id)",
    )


class Location(Base):
    __tablename__ = "location"

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_id)
    organization_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("organization.id"), index=True)
    location_type: Mapped[str] = mapped_column(String(16), default="physical")
    url: Mapped[str | None] = mapped_column(String(2048))
    name: Mapped[str | None] = mapped_column(String(255))
    alternate_name: Mapped[str | None] = mapped_column(String(255))
    description: Mapped[str | None] = mapped_column(Text)
    transportation: Mapped[str | None] = mapped_column(Text)
    latitude: Mapped[float | None] = mapped_column(Float)
    longitude: Mapped[float | None] = mapped_column(Float)

    organization: Mapped[Organization | None] = relationship(back_populates="locations")
    addresses: Mapped[list[Address]] = relationship(back_populates="location", order_by="Address.address_type")
    phones: Mapped[list[Phone]] = relationship(
        primaryjoin="and_(Phone.location_id == Location.id, Phone.service_id.is_(None))",
        viewonly=True,
        order_by="Phone.number",
    )
    languages: Mapped[list[Language]] = relationship(
        primaryjoin="and_(Language.location_id == Location.id, Language.service_id.is_(None))",
        viewonly=True,
    )


class Address(Base):
    __tablename__ = "address"

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_id)
    location_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("location.id"), index=True)
    attention: Mapped[str | None] = mapped_column(String(255))
    address_1: Mapped[str] = mapped_column(String(255))
    address_2: Mapped[str | None] = mapped_column(String(255))
    city: Mapped[str] = mapped_column(String(100))
    region: Mapped[str | None] = mapped_column(String(100))
    state_province: Mapped[str] = mapped_column(String(100))
    postal_code: Mapped[str] = mapped_column(String(16), index=True)
    country: Mapped[str] = mapped_column(String(2))
    address_type: Mapped[str] = mapped_column(String(16), default="physical")

    location: Mapped[Location] = relationship(back_populates="addresses")


class ServiceAtLocation(Base):
    __tablename__ = "service_at_location"

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_id)
    service_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("service.id"), index=True)
    location_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("location.id"), index=True)
    description: Mapped[str | None] = mapped_column(Text)

    service: Mapped[Service] = relationship(back_populates="service_at_locations")
    location: Mapped[Location] = relationship()
    phones: Mapped[list[Phone]] = relationship(
        primaryjoin="Phone.service_at_location_id == ServiceAtLocation.id", viewonly=True
    )
    contacts: Mapped[list[Contact]] = relationship(
        primaryjoin="Contact.service_at_location_id == ServiceAtLocation.id", viewonly=True
    )
    schedules: Mapped[list[Schedule]] = relationship(
        primaryjoin="Schedule.service_at_location_id == ServiceAtLocation.id", viewonly=True
    )


class ServiceArea(Base):
    __tablename__ = "service_area"

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_id)
    service_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("service.id"), index=True)
    name: Mapped[str | None] = mapped_column(String(255))
    description: Mapped[str | None] = mapped_column(Text)
    extent: Mapped[str | None] = mapped_column(Text)
    extent_type: Mapped[str | None] = mapped_column(String(32))
    uri: Mapped[str | None] = mapped_column(String(2048))
    # Extension: the area covers every Connecticut town.
    statewide: Mapped[bool] = mapped_column(Boolean, default=False)

    service: Mapped[Service] = relationship(back_populates="service_areas")
    towns: Mapped[list[ServiceAreaTown]] = relationship(
        back_populates="service_area", cascade="all, delete-orphan", order_by="ServiceAreaTown.town"
    )


class ServiceAreaTown(Base):
    """A Connecticut town a service area covers (extension, for town and ZIP filters)."""

    __tablename__ = "service_area_town"

    service_area_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("service_area.id"), primary_key=True)
    town: Mapped[str] = mapped_column(String(100), primary_key=True)

    service_area: Mapped[ServiceArea] = relationship(back_populates="towns")


class Phone(Base):
    __tablename__ = "phone"

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_id)
    organization_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("organization.id"), index=True)
    service_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("service.id"), index=True)
    location_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("location.id"), index=True)
    contact_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("contact.id"), index=True)
    service_at_location_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("service_at_location.id"), index=True)
    number: Mapped[str] = mapped_column(String(64))
    extension: Mapped[int | None] = mapped_column(Integer)
    type: Mapped[str | None] = mapped_column(String(16))
    description: Mapped[str | None] = mapped_column(Text)


class Contact(Base):
    __tablename__ = "contact"

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_id)
    organization_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("organization.id"), index=True)
    service_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("service.id"), index=True)
    service_at_location_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("service_at_location.id"), index=True)
    location_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("location.id"), index=True)
    name: Mapped[str | None] = mapped_column(String(255))
    title: Mapped[str | None] = mapped_column(String(255))
    department: Mapped[str | None] = mapped_column(String(255))
    email: Mapped[str | None] = mapped_column(String(255))

    service: Mapped[Service | None] = relationship(back_populates="contacts")
    phones: Mapped[list[Phone]] = relationship(
        primaryjoin="Phone.contact_id == Contact.id", viewonly=True, order_by="Phone.number"
    )


class Schedule(Base):
    __tablename__ = "schedule"

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_id)
    service_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("service.id"), index=True)
    location_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("location.id"), index=True)
    service_at_location_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("service_at_location.id"), index=True)
    valid_from: Mapped[str | None] = mapped_column(String(32))
    valid_to: Mapped[str | None] = mapped_column(String(32))
    dtstart: Mapped[str | None] = mapped_column(String(32))
    until: Mapped[str | None] = mapped_column(String(32))
    wkst: Mapped[str | None] = mapped_column(String(2))
    freq: Mapped[str | None] = mapped_column(String(16))
    interval: Mapped[int | None] = mapped_column(Integer)
    byday: Mapped[str | None] = mapped_column(String(64))
    opens_at: Mapped[str | None] = mapped_column(String(16))
    closes_at: Mapped[str | None] = mapped_column(String(16))
    description: Mapped[str | None] = mapped_column(Text)
    attending_type: Mapped[str | None] = mapped_column(Text)  # HSDS: free text
    notes: Mapped[str | None] = mapped_column(Text)

    service: Mapped[Service | None] = relationship(back_populates="schedules")


class Language(Base):
    __tablename__ = "language"

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_id)
    service_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("service.id"), index=True)
    location_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("location.id"), index=True)
    phone_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("phone.id"), index=True)
    name: Mapped[str | None] = mapped_column(String(100))
    code: Mapped[str | None] = mapped_column(String(16), index=True)
    note: Mapped[str | None] = mapped_column(Text)

    service: Mapped[Service | None] = relationship(back_populates="languages")


class Attribute(Base):
    """Links a taxonomy term to a record; a service's categories are its attributes."""

    __tablename__ = "attribute"

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_id)
    link_id: Mapped[uuid.UUID] = mapped_column(index=True)
    link_type: Mapped[str | None] = mapped_column(String(64))
    link_entity: Mapped[str] = mapped_column(String(32))
    taxonomy_term_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("taxonomy_term.id"), index=True)
    value: Mapped[str | None] = mapped_column(Text)

    taxonomy_term: Mapped[TaxonomyTerm] = relationship()


class ReferralContactPoint(Base):
    """Who to contact to refer a child to a service, and how (extension)."""

    __tablename__ = "referral_contact_point"

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_id)
    service_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("service.id"), index=True)
    channel: Mapped[str] = mapped_column(String(16), index=True)
    value: Mapped[str] = mapped_column(String(2048))
    audience: Mapped[str] = mapped_column(String(32), index=True)
    purpose: Mapped[str] = mapped_column(String(16))
    instructions: Mapped[str | None] = mapped_column(Text)

    service: Mapped[Service] = relationship(back_populates="referral_contact_points")
