"""The bus envelope: every Kafka record value is one ``metrofed.v1.Envelope`` around a typed payload."""

from __future__ import annotations

import uuid
from dataclasses import dataclass

from google.protobuf import message as _message
from google.protobuf.timestamp_pb2 import Timestamp

from metrofed.v1 import events_pb2

SCHEMA_VERSION = 1
WITHDRAWN = "metrofed.v1.CapabilityWithdrawn"  # event type of a capability tombstone (no payload)

_TYPES: dict[str, type[_message.Message]] = {
    cls.DESCRIPTOR.full_name: cls
    for cls in (
        events_pb2.CentreRegistered,
        events_pb2.CapabilityPublished,
        events_pb2.RequestRouted,
        events_pb2.RequestCancelled,
        events_pb2.RequestStatusChanged,
    )
}


class UnknownEvent(Exception):
    """An event type this build does not know: skipped, not an error (a newer producer may be ahead)."""


@dataclass(frozen=True)
class Decoded:
    envelope: events_pb2.Envelope
    event: _message.Message


def wrap(event: _message.Message, producer: str, *, event_id: str | None = None) -> events_pb2.Envelope:
    ts = Timestamp()
    ts.GetCurrentTime()
    return events_pb2.Envelope(
        event_id=event_id or str(uuid.uuid4()),
        event_type=event.DESCRIPTOR.full_name,
        producer_centre_id=producer,
        occurred_at=ts,
        schema_version=SCHEMA_VERSION,
        payload=event.SerializeToString(),
    )


def unwrap(value: bytes) -> Decoded:
    env = events_pb2.Envelope.FromString(value)
    cls = _TYPES.get(env.event_type)
    if cls is None:
        raise UnknownEvent(env.event_type)
    return Decoded(env, cls.FromString(env.payload))
