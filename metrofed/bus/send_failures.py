"""Why a record could not be published, in the two classes the outbox relay acts on.

Permanent: the broker (or the client, before sending) refuses *this record* and always will — too large,
a topic name Kafka does not allow, no permission on the topic, a value that cannot be serialized. Sending
it again changes nothing; the relay marks the row dead and moves on.

Transient: anything that depends on the moment — broker down, leader moving, not enough in-sync replicas,
a topic that does not exist yet, no acknowledgement in time. The row and the later rows of its key wait and
are retried with backoff. An error we do not know is treated as transient: never drop an event on a guess.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from kafka import errors as kafka_errors

_PERMANENT = (
    kafka_errors.MessageSizeTooLargeError,  # client max_request_size, or the broker's message.max.bytes
    kafka_errors.RecordListTooLargeError,
    kafka_errors.InvalidTopicError,
    kafka_errors.TopicAuthorizationFailedError,
    kafka_errors.ClusterAuthorizationFailedError,
    kafka_errors.InvalidRecordError,
    kafka_errors.UnsupportedForMessageFormatError,
    TypeError,  # a key or value that is not bytes: the serializer can never send it
    ValueError,
)

# Kafka's own rule (org.apache.kafka.common.internals.Topic). kafka-python does not raise for a bad name:
# the broker's metadata answer is only logged and send() waits max_block_ms, which would look transient.
_LEGAL_TOPIC = re.compile(r"^[a-zA-Z0-9._-]{1,249}$")


@dataclass(frozen=True)
class SendFailure:
    permanent: bool
    reason: str  # what an operator reads: the error class and its message


def topic_problem(topic: str) -> str | None:
    """Why ``topic`` can never exist on a Kafka cluster, or None when the name is legal."""
    if topic in (".", "..") or not _LEGAL_TOPIC.match(topic or ""):
        return f"InvalidTopicError: {topic!r} is not a legal Kafka topic name ([a-zA-Z0-9._-], 1-249 characters)"
    return None


def classify(exc: BaseException) -> SendFailure:
    reason = f"{type(exc).__name__}: {exc}"[:2000]
    return SendFailure(isinstance(exc, _PERMANENT), reason)
