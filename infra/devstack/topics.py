"""Topic creation lives with the bus code (metrofed/bus/admin.py); re-exported for devstack users."""

from metrofed.bus.admin import ensure_topics
from metrofed.bus.topics import TopicSpec

__all__ = ["TopicSpec", "ensure_topics"]
