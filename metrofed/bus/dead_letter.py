"""Dead-letter records: the original record (key, value, headers) plus headers saying where it came from and
why it could never be handled. One dead-letter topic per consumer group (``topics.dlq(group)``).

A consumer commits its offset past a poison record only after the broker has acknowledged the dead
letter (acks=all), so a crash in between re-delivers the record and it is dead-lettered again: a dead
letter may appear twice, never zero times.
"""

from __future__ import annotations

import datetime as dt
import logging
from dataclasses import dataclass, field

from kafka.errors import MessageSizeTooLargeError

from metrofed.bus import topics

log = logging.getLogger(__name__)

PREFIX = "metrofed-dlq-"
ORIGIN_TOPIC = PREFIX + "origin-topic"
ORIGIN_PARTITION = PREFIX + "origin-partition"
ORIGIN_OFFSET = PREFIX + "origin-offset"
GROUP = PREFIX + "group"
REASON_CODE = PREFIX + "reason-code"
REASON = PREFIX + "reason"
FAILED_AT = PREFIX + "failed-at"
EVENT_ID = PREFIX + "event-id"
VALUE_OMITTED = PREFIX + "value-omitted"  # the original value did not fit; its length in bytes
REDRIVEN_FROM = "metrofed-redriven-from"  # on a re-driven record: <dlq topic>/<partition>/<offset>

MAX_HEADER_TEXT = 1000


def _clip(text: str) -> str:
    return text if len(text) <= MAX_HEADER_TEXT else text[:MAX_HEADER_TEXT] + "…"


def original_headers(headers) -> list[tuple[str, bytes]]:
    """The record's headers without those of an earlier dead-lettering (a re-driven record that failed
    again carries the new failure's headers only)."""
    return [(k, v if v is not None else b"") for k, v in (headers or ()) if not k.startswith(PREFIX)]


def dead_letter_headers(record, group: str, code: str, reason: str, event_id: str = "",
                        failed_at: dt.datetime | None = None) -> list[tuple[str, bytes]]:
    at = (failed_at or dt.datetime.now(dt.timezone.utc)).isoformat(timespec="milliseconds")
    headers = original_headers(record.headers) + [
        (ORIGIN_TOPIC, record.topic.encode()),
        (ORIGIN_PARTITION, str(record.partition).encode()),
        (ORIGIN_OFFSET, str(record.offset).encode()),
        (GROUP, group.encode()),
        (REASON_CODE, code.encode()),
        (REASON, _clip(reason).encode("utf-8", "replace")),
        (FAILED_AT, at.encode()),
    ]
    if event_id:
        headers.append((EVENT_ID, _clip(event_id).encode("utf-8", "replace")))
    return headers


class DeadLetterWriter:
    """Writes poison records of one group to its dead-letter topic through an acks=all producer."""

    def __init__(self, producer, group: str, *, timeout: float = 15.0):
        self._producer = producer
        self.group = group
        self.topic = topics.dlq(group)
        self._timeout = timeout

    def send(self, record, code: str, reason: str, event_id: str = ""):
        """Starts the write; returns the producer's future (``.get()`` waits for the acknowledgement)."""
        return self._producer.send(self.topic, key=record.key, value=record.value,
                                   headers=dead_letter_headers(record, self.group, code, reason, event_id))

    def write(self, record, code: str, reason: str, event_id: str = "") -> None:
        """Returns once the broker has acknowledged the dead letter; raises (a transient failure) otherwise."""
        try:
            self.send(record, code, reason, event_id).get(timeout=self._timeout)
        except MessageSizeTooLargeError:
            # The original barely fitted its own topic and our headers tipped it over: keep the evidence
            # that matters (where, why, how big) rather than retrying forever.
            headers = dead_letter_headers(record, self.group, code, reason, event_id)
            headers.append((VALUE_OMITTED, str(len(record.value or b"")).encode()))
            self._producer.send(self.topic, key=record.key, value=None, headers=headers).get(timeout=self._timeout)


@dataclass(frozen=True)
class DeadLetter:
    """A record of a dead-letter topic, read back (by the operator CLI)."""

    topic: str
    partition: int
    offset: int
    key: bytes | None
    value: bytes | None
    origin_topic: str
    origin_partition: int
    origin_offset: int
    group: str
    reason_code: str
    reason: str
    failed_at: str
    event_id: str
    event_type: str
    headers: list[tuple[str, bytes]] = field(default_factory=list)  # the original record's

    @classmethod
    def from_record(cls, record) -> "DeadLetter":
        h: dict[str, str] = {}
        for k, v in record.headers or ():
            h[k] = (v or b"").decode("utf-8", "replace")

        def num(name: str) -> int:
            try:
                return int(h.get(name, "-1"))
            except ValueError:
                return -1

        return cls(topic=record.topic, partition=record.partition, offset=record.offset, key=record.key,
                   value=record.value, origin_topic=h.get(ORIGIN_TOPIC, ""),
                   origin_partition=num(ORIGIN_PARTITION), origin_offset=num(ORIGIN_OFFSET),
                   group=h.get(GROUP, ""), reason_code=h.get(REASON_CODE, ""), reason=h.get(REASON, ""),
                   failed_at=h.get(FAILED_AT, ""), event_id=h.get(EVENT_ID, ""),
                   event_type=h.get("metrofed-event-type", ""), headers=original_headers(record.headers))

    @property
    def origin(self) -> tuple[str, int, int]:
        return self.origin_topic, self.origin_partition, self.origin_offset
