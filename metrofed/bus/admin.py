"""Topic creation through the Kafka admin client: explicit configs, never broker auto-creation."""

from __future__ import annotations

import logging
import time

from metrofed.bus.security import KafkaSecurity
from metrofed.bus.topics import TopicSpec

_log = logging.getLogger(__name__)


def ensure_topics(bootstrap: str, specs: list[TopicSpec] | tuple[TopicSpec, ...], *,
                  security: KafkaSecurity, timeout: float = 30) -> dict[str, str]:
    """Create every topic in ``specs`` that does not exist yet and wait until all are usable.

    Returns ``{name: "created" | "exists"}``. An existing topic is left alone; if its partition
    count or any of the spec's configs differ, a warning line is printed (changing a live topic's
    partitioning changes key->partition mapping, so that is a decision for a human, not for here).
    Waits until metadata shows every topic with a leader on every partition; raises
    ``TimeoutError`` after ``timeout`` seconds.
    """
    from kafka.admin import ConfigResource, ConfigResourceType, KafkaAdminClient
    from kafka.errors import KafkaError, TopicAlreadyExistsError

    specs = list(specs)
    names = [s.name for s in specs]
    if len(set(names)) != len(names):
        raise ValueError(f"duplicate topic names in specs: {names}")
    deadline = time.monotonic() + timeout
    ms_left = lambda: max(1000, int((deadline - time.monotonic()) * 1000))  # noqa: E731

    admin = KafkaAdminClient(bootstrap_servers=bootstrap, bootstrap_timeout_ms=ms_left(),
                             request_timeout_ms=min(ms_left(), 30000),
                             client_id="devstack-ensure-topics", **security.client_kwargs())
    try:
        existing = set(admin.list_topics())
        result: dict[str, str] = {}
        to_create = {}
        for spec in specs:
            if spec.name in existing:
                result[spec.name] = "exists"
            else:
                to_create[spec.name] = {
                    "num_partitions": spec.partitions,
                    "replication_factor": spec.replication_factor,
                    "configs": {k: str(v) for k, v in spec.configs.items()},
                }
        if to_create:
            response = admin.create_topics(to_create, timeout_ms=min(ms_left(), 30000),
                                           raise_errors=False)
            for topic in response.get("topics", []):
                code = topic.get("error_code", 0)
                name = topic.get("name")
                if code == 0:
                    result[name] = "created"
                elif code == TopicAlreadyExistsError.errno:  # lost a race with another creator
                    result[name] = "exists"
                else:
                    raise KafkaError(f"create topic {name!r} failed: error {code} "
                                     f"{topic.get('error_message')}")
        admin.wait_for_topics(names, timeout_ms=ms_left())

        # Report drift on topics that already existed.
        old = [s for s in specs if result.get(s.name) == "exists"]
        if old:
            described = {t["name"]: t for t in admin.describe_topics(topics=[s.name for s in old])}
            configs = admin.describe_configs(
                [ConfigResource(ConfigResourceType.TOPIC, s.name) for s in old])
            for spec in old:
                have_parts = len(described.get(spec.name, {}).get("partitions", []))
                if have_parts != spec.partitions:
                    _log.warning(f"topic {spec.name}: has {have_parts} partitions, spec says "
                        f"{spec.partitions} (left as is)")
                have = _topic_configs(configs, spec.name)
                for key, want in spec.configs.items():
                    if have.get(key) != str(want):
                        _log.warning(f"topic {spec.name}: {key}={have.get(key)!r}, spec says {want!r} "
                            "(left as is)")
        created = [n for n, r in result.items() if r == "created"]
        if created:
            _log.info(f"created topics: {', '.join(created)}")
        return result
    finally:
        admin.close()


def _topic_configs(described, name: str) -> dict[str, str]:
    """Flatten kafka-python 3's describe_configs answer to {key: value} for one topic."""
    # Shape: {resource_type: {resource_name: {config_key: {config data}}}}; keys may be enum or str.
    for rtype, by_name in (described or {}).items():
        if name in by_name:
            out = {}
            for key, data in by_name[name].items():
                value = data.get("value") if isinstance(data, dict) else data
                out[str(key)] = None if value is None else str(value)
            return out
    return {}


__all__ = ["TopicSpec", "ensure_topics"]
