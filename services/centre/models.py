"""The centre's own database. The schema is owned by the Alembic migrations beside this file."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import JSON, Boolean, DateTime, Integer, LargeBinary, String, Text
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from metrofed.db.outbox import OutboxMixin, ProcessedEventMixin, utcnow


class Base(DeclarativeBase):
    pass


class ProfileRow(Base):
    __tablename__ = "centre_profile"
    centre_id: Mapped[str] = mapped_column(String(40), primary_key=True)
    data: Mapped[dict] = mapped_column(JSON)  # records.centre_to_dict form
    updated_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), default=utcnow, onupdate=utcnow)


class CapabilityRow(Base):
    __tablename__ = "capabilities"
    capability_id: Mapped[str] = mapped_column(String(60), primary_key=True)
    version: Mapped[int] = mapped_column(Integer)
    data: Mapped[dict] = mapped_column(JSON)  # records.capability_to_dict form
    withdrawn: Mapped[bool] = mapped_column(Boolean, default=False)
    updated_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), default=utcnow, onupdate=utcnow)


class InboxRow(Base):
    """A request routed to this centre. ``request_id`` is the natural key: a redelivery finds it here."""

    __tablename__ = "inbox"
    request_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    enterprise_id: Mapped[str] = mapped_column(String(100))
    capability_id: Mapped[str] = mapped_column(String(60), index=True)
    need: Mapped[bytes] = mapped_column(LargeBinary)  # metrofed.v1.Need
    quantity: Mapped[int] = mapped_column(Integer, default=1)
    state: Mapped[str] = mapped_column(String(20), index=True)
    attempt: Mapped[int] = mapped_column(Integer, default=1)
    requested_by: Mapped[str] = mapped_column(String(40), default="gateway")
    note: Mapped[str] = mapped_column(Text, default="")
    result_certificate: Mapped[str] = mapped_column(Text, default="")  # unused since 0002: see CertificateRow
    created_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    updated_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), default=utcnow, onupdate=utcnow)


class CertificateRow(Base):
    """A completed request's certificate, kept here and fetched by reference (claim check): it can be far
    larger than a bus event may be, so only its ``CertificateRef`` travels on Kafka."""

    __tablename__ = "certificates"
    certificate_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    request_id: Mapped[str] = mapped_column(String(64), unique=True)
    media_type: Mapped[str] = mapped_column(String(100))
    sha256: Mapped[str] = mapped_column(String(64))  # hex digest of body
    size_bytes: Mapped[int] = mapped_column(Integer)
    body: Mapped[bytes] = mapped_column(LargeBinary)
    created_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class Outbox(OutboxMixin, Base):
    __tablename__ = "outbox"


class ProcessedEvent(ProcessedEventMixin, Base):
    __tablename__ = "processed_events"
