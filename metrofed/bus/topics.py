"""Every topic metrofed uses, with its configuration. Topics are created by the project, never auto-created."""

from __future__ import annotations

from dataclasses import dataclass, field

CENTRES = "metrofed.centres.v1"
CAPABILITIES = "metrofed.capabilities.v1"
REQUEST_STATUS = "metrofed.request-status.v1"
INBOX_PREFIX = "metrofed.inbox."

_WEEK_MS = str(7 * 24 * 3600 * 1000)


@dataclass(frozen=True)
class TopicSpec:
    name: str
    partitions: int = 3
    configs: dict[str, str] = field(default_factory=dict)
    replication_factor: int = 1


def inbox(centre_id: str) -> str:
    """Each centre has its own inbox topic: it reads only work addressed to it."""
    return f"{INBOX_PREFIX}{centre_id}.v1"


# The catalog is rebuilt from these two from offset 0, so they are compacted: the latest record per
# key (centre, or centre/capability) survives, and tombstones are kept a day so a rebuilding gateway sees
# withdrawals.
FEDERATION_TOPICS = (
    TopicSpec(CENTRES, 1, {"cleanup.policy": "compact", "min.insync.replicas": "1",
                           "delete.retention.ms": "86400000"}),
    TopicSpec(CAPABILITIES, 6, {"cleanup.policy": "compact", "min.insync.replicas": "1",
                                "delete.retention.ms": "86400000", "segment.ms": "3600000"}),
    TopicSpec(REQUEST_STATUS, 6, {"cleanup.policy": "delete", "retention.ms": _WEEK_MS,
                                  "min.insync.replicas": "1"}),
)


def inbox_spec(centre_id: str) -> TopicSpec:
    return TopicSpec(inbox(centre_id), 1, {"cleanup.policy": "delete", "retention.ms": _WEEK_MS,
                                           "min.insync.replicas": "1"})
