"""The gateway's database: enterprise requests and their history. The catalog is not stored here: it
is rebuilt from Kafka at every start (docs/catalog.md). Schema owned by the Alembic migrations beside."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import JSON, DateTime, ForeignKey, Integer, LargeBinary, String, Text, UniqueConstraint
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from metrofed.db.outbox import OutboxMixin, ProcessedEventMixin, utcnow


class Base(DeclarativeBase):
    pass


class RequestRow(Base):
    __tablename__ = "requests"
    __table_args__ = (UniqueConstraint("enterprise_id", "idempotency_key", name="uq_requests_idempotency"),)

    request_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    enterprise_id: Mapped[str] = mapped_column(String(100), index=True)
    idempotency_key: Mapped[str | None] = mapped_column(String(100), nullable=True)
    need: Mapped[bytes] = mapped_column(LargeBinary)  # metrofed.v1.Need as submitted
    state: Mapped[str] = mapped_column(String(20), index=True)
    attempt: Mapped[int] = mapped_column(Integer, default=0)
    assigned_centre_id: Mapped[str] = mapped_column(String(40), default="", index=True)
    assigned_capability_id: Mapped[str] = mapped_column(String(60), default="")
    routing: Mapped[bytes] = mapped_column(LargeBinary, default=b"")  # metrofed.v1.RoutingDecision
    tried_centres: Mapped[list] = mapped_column(JSON, default=list)
    trace_id: Mapped[str] = mapped_column(String(32), default="")
    result_certificate: Mapped[str] = mapped_column(Text, default="")  # only from centres before 0002
    certificate_ref: Mapped[bytes | None] = mapped_column(LargeBinary, nullable=True)  # metrofed.v1.CertificateRef
    # The assigned centre's answer deadline for the current attempt (docs/failover.md); NULL before 0003.
    respond_by: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True), nullable=True, index=True)
    created_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    updated_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), default=utcnow, onupdate=utcnow,
                                                    index=True)


class HistoryRow(Base):
    __tablename__ = "request_history"
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    request_id: Mapped[str] = mapped_column(ForeignKey("requests.request_id"), index=True)
    state: Mapped[str] = mapped_column(String(20))
    centre_id: Mapped[str] = mapped_column(String(40), default="")
    note: Mapped[str] = mapped_column(Text, default="")
    at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class Outbox(OutboxMixin, Base):
    __tablename__ = "outbox"


class ProcessedEvent(ProcessedEventMixin, Base):
    __tablename__ = "processed_events"
