"""Every topic metrofed uses, with its configuration. Topics are created by the project, never auto-created."""

from __future__ import annotations

from dataclasses import dataclass, field

CENTRES = "metrofed.centres.v1"
CAPABILITIES = "metrofed.capabilities.v1"
REQUEST_STATUS = "metrofed.request-status.v1"
INBOX_PREFIX = "metrofed.inbox."
DLQ_PREFIX = "metrofed.dlq."
CATALOG_GROUP = "gateway-catalog"  # not a Kafka group (the feed assigns itself): names its DLQ


_WEEK_MS = str(7 * 24 * 3600 * 1000)
_DLQ_RETENTION_MS = str(30 * 24 * 3600 * 1000)


@dataclass(frozen=True)
class TopicSpec:
    name: str
    partitions: int = 3
    configs: dict[str, str] = field(default_factory=dict)
    replication_factor: int = 1


def inbox(centre_id: str) -> str:
    """Each centre has its own inbox topic: it reads only work addressed to it."""
    return f"{INBOX_PREFIX}{centre_id}.v1"


def _replicated(configs: dict[str, str], replication: int) -> dict[str, str]:
    # One broker (make run, tests): min ISR 1. A cluster: 2, so acks=all survives one broker down.
    return {**configs, "min.insync.replicas": "1" if replication < 3 else "2"}


def federation_topics(replication: int = 1) -> tuple[TopicSpec, ...]:
    """The shared topics. The catalog is rebuilt from the two compacted ones from offset 0: the latest
    record per key (centre, or centre/capability) survives, and tombstones are kept a day so that a
    rebuilding gateway sees withdrawals."""
    return (
        TopicSpec(CENTRES, 1, _replicated({"cleanup.policy": "compact", "delete.retention.ms": "86400000"},
                                          replication), replication),
        TopicSpec(CAPABILITIES, 6, _replicated({"cleanup.policy": "compact", "delete.retention.ms": "86400000",
                                                "segment.ms": "3600000"}, replication), replication),
        TopicSpec(REQUEST_STATUS, 6, _replicated({"cleanup.policy": "delete", "retention.ms": _WEEK_MS},
                                                 replication), replication),
    )


FEDERATION_TOPICS = federation_topics()


def inbox_spec(centre_id: str, replication: int = 1) -> TopicSpec:
    return TopicSpec(inbox(centre_id), 1, _replicated({"cleanup.policy": "delete", "retention.ms": _WEEK_MS},
                                                      replication), replication)


def dlq(group: str) -> str:
    """The dead-letter topic of one consumer group: records it could never handle, with the reason."""
    return f"{DLQ_PREFIX}{group}.v1"


def dlq_spec(group: str, replication: int = 1) -> TopicSpec:
    """One partition: dead letters are rare, an operator addresses them by offset, and their order is the
    order they failed in. Kept 30 days (not compacted): a record is evidence, not state."""
    return TopicSpec(dlq(group), 1, _replicated({"cleanup.policy": "delete", "retention.ms": _DLQ_RETENTION_MS},
                                               replication), replication)
