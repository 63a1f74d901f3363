"""Seals on Kafka records: where a record's signature lives and what its leaf covers.

A record with a value carries its seal inside the ``Envelope`` (``signature``, ``signing_key_id``,
``seal_*``). A tombstone has no value (compaction needs ``null``), so its seal and the envelope fields
its leaf covers travel in headers (``metrofed-producer``, ``metrofed-occurred-at``, ``metrofed-seal-*``).
The signing and hashing themselves are ``metrofed.trust.signing``'s.
"""

from __future__ import annotations

from google.protobuf.message import DecodeError

from metrofed.bus.failures import PermanentFailure
from metrofed.trust.signing import Seal, Signer, Verifier, leaf
from metrofed.v1 import events_pb2

SCHEMA_VERSION = 1
H_EVENT_ID, H_EVENT_TYPE = "metrofed-event-id", "metrofed-event-type"
H_PRODUCER, H_OCCURRED = "metrofed-producer", "metrofed-occurred-at"
H_WITHDRAWN = "metrofed-withdrawn-version"  # on a capability tombstone: the version it withdraws
H_KID, H_SIG, H_INDEX, H_SIZE, H_PATH = ("metrofed-seal-kid", "metrofed-seal-signature", "metrofed-seal-index",
                                         "metrofed-seal-size", "metrofed-seal-path")


def party_of(producer: str) -> str:
    """The trust-store party that may speak as ``producer`` (an envelope's ``producer_centre_id``)."""
    return "gateway" if producer == "gateway" else f"centre-{producer}"


def _key_bytes(key: str | bytes | None) -> bytes | None:
    return key.encode() if isinstance(key, str) else key


def envelope_leaf(topic: str, key: str | bytes | None, env: events_pb2.Envelope) -> bytes:
    occurred = env.occurred_at.seconds * 1_000_000_000 + env.occurred_at.nanos
    return leaf(topic, _key_bytes(key), env.event_id, env.event_type, env.producer_centre_id, occurred,
                env.schema_version, env.payload)


def tombstone_leaf(topic: str, key: str | bytes | None, event_id: str, event_type: str, producer: str,
                   occurred_ns: int, withdrawn_version: int | None) -> bytes:
    return leaf(topic, _key_bytes(key), event_id, event_type, producer, occurred_ns, SCHEMA_VERSION, None,
                withdrawn_version)


def seal_batch(signer: Signer, items: list[tuple[str, str | None, bytes | None, str, str, int, int | None]]
               ) -> list[tuple[bytes | None, list[tuple[str, bytes]]]]:
    """Signs a relay batch. ``items``: (topic, key, value, event id, event type, occurred ns, withdrawn
    version) per record, value ``None`` for a tombstone. Returns each sealed value and the headers to add."""
    envelopes: list[events_pb2.Envelope | None] = []
    leaves = []
    producer = signer.party.removeprefix("centre-")
    for topic, key, value, event_id, event_type, occurred_ns, withdrawn in items:
        if value is None:
            envelopes.append(None)
            leaves.append(tombstone_leaf(topic, key, event_id, event_type, producer, occurred_ns, withdrawn))
        else:
            env = events_pb2.Envelope.FromString(value)
            envelopes.append(env)
            leaves.append(envelope_leaf(topic, key, env))
    out = []
    for (_t, _k, _v, _e, _ty, occurred_ns, _w), env, seal in zip(items, envelopes, signer.seal(leaves)):
        if env is not None:
            env.signing_key_id, env.signature = seal.kid, seal.signature
            env.seal_index, env.seal_size = seal.index, seal.size
            env.seal_path[:] = seal.path
            out.append((env.SerializeToString(), []))
        else:
            out.append((None, [(H_PRODUCER, producer.encode()), (H_OCCURRED, str(occurred_ns).encode()),
                               (H_KID, seal.kid.encode()), (H_SIG, seal.signature),
                               (H_INDEX, str(seal.index).encode()), (H_SIZE, str(seal.size).encode()),
                               (H_PATH, b"".join(seal.path))]))
    return out


def envelope_seal(env: events_pb2.Envelope) -> Seal:
    return Seal(env.signing_key_id, env.signature, env.seal_index, env.seal_size, tuple(env.seal_path))


def verify_envelope(verifier: Verifier, topic: str, key: str | bytes | None, env: events_pb2.Envelope) -> str:
    """Verifies ``env`` as its producer's; returns that producer (the envelope's ``producer_centre_id``)."""
    verifier.verify(envelope_leaf(topic, key, env), envelope_seal(env), party=party_of(env.producer_centre_id))
    return env.producer_centre_id


def _headers(record) -> dict[str, bytes]:
    return {k: v for k, v in (record.headers or ()) if v is not None}


def withdrawn_version(record) -> int | None:
    raw = _headers(record).get(H_WITHDRAWN)
    try:
        return int(raw) if raw is not None else None
    except ValueError:
        raise PermanentFailure("invalid", "unreadable withdrawn-version header") from None


def verify_tombstone(verifier: Verifier, record) -> str:
    """Verifies a tombstone record's seal from its headers; returns its producer."""
    h = _headers(record)
    try:
        producer = h[H_PRODUCER].decode()
        path_bytes = h.get(H_PATH, b"")
        if len(path_bytes) % 32:
            raise ValueError("seal path is not a list of SHA-256 hashes")
        seal = Seal(h[H_KID].decode(), h[H_SIG], int(h[H_INDEX]), int(h[H_SIZE]),
                    tuple(path_bytes[i:i + 32] for i in range(0, len(path_bytes), 32)))
        lf = tombstone_leaf(record.topic, record.key, h[H_EVENT_ID].decode(), h[H_EVENT_TYPE].decode(), producer,
                            int(h[H_OCCURRED]), withdrawn_version(record))
    except KeyError as exc:
        raise PermanentFailure("signature", f"unsigned tombstone (no {exc.args[0]} header)") from None
    except (ValueError, UnicodeDecodeError) as exc:
        raise PermanentFailure("signature", f"tombstone seal headers unreadable: {str(exc)[:80]}") from None
    verifier.verify(lf, seal, party=party_of(producer))
    return producer


def decode_envelope(value: bytes) -> events_pb2.Envelope:
    try:
        return events_pb2.Envelope.FromString(value)
    except DecodeError as exc:
        raise PermanentFailure("undecodable", f"not a metrofed.v1.Envelope: {str(exc)[:80]}") from None


def authenticated(verifier: Verifier, handler, attribution):
    """Wraps a consumer handler: the record's seal is verified, then ``attribution(record, decoded,
    producer)`` checks the producer may say what the event says (raising ``PermanentFailure``), and only
    then does ``handler`` run. A rejected record never reaches the handler: the consumer dead-letters it."""
    def verified(record, decoded):
        if decoded is None:
            producer = verify_tombstone(verifier, record)
        else:
            producer = verify_envelope(verifier, record.topic, record.key, decoded.envelope)
        attribution(record, decoded, producer)
        handler(record, decoded)

    return verified


def from_gateway_to(centre_id: str):
    """A centre's inbox takes work only from the gateway. (That it is addressed to this centre is the inbox's
    own check, ``services/centre/inbox_checks.py``; the signature also covers the topic it was written to.)"""
    def check(record, decoded, producer: str) -> None:
        if producer != "gateway":
            raise PermanentFailure("unauthorised", f"inbox events come from the gateway, not {producer[:60]!r}")
    return check


def status_from_its_centre(record, decoded, producer: str) -> None:
    """A status event speaks for the centre that signed it."""
    if decoded is None:
        raise PermanentFailure("invalid", "a tombstone on the status topic")
    said = getattr(decoded.event, "centre_id", producer)
    if said != producer:
        raise PermanentFailure("unauthorised", f"signed by centre {producer[:60]!r} but speaks for {said[:60]!r}")
