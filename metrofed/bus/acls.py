"""Who may do what on the bus: the broker's ACLs for each party, created with the admin identity.

The broker (infra/devstack/kafka.py) denies everything no ACL allows (``allow.everyone.if.no.acl.found=false``)
and maps a client certificate's CN to its principal, so these grants are the whole of a party's rights:

- ``centre-X`` writes the shared topics it produces to (centres, capabilities, request status), reads only
  its own inbox with its own group, creates its own inbox and its own dead-letter topic;
- ``gateway`` reads the shared topics with groups named ``gateway*``, writes and creates inboxes
  (``metrofed.inbox.*``) and its dead-letter topics (``metrofed.dlq.gateway*``; reads them too: the
  catalog feed checks what it dead-lettered already);
- both may describe the shared topics they check at start. Nobody else gets anything; ``broker`` and
  ``admin`` are super users. The shared topics are created by ``admin`` before any service starts.

docs/transport-security.md has the table.
"""

from __future__ import annotations

import time

from kafka.admin import (ACL, ACLFilter, ACLOperation as Op, ACLPermissionType, ACLResourcePatternType as Pat,
                         ResourcePattern, ResourcePatternFilter, ResourceType)
from kafka.errors import KafkaError

from metrofed.bus import topics
from metrofed.bus.security import KafkaSecurity

SHARED = (topics.CENTRES, topics.CAPABILITIES, topics.REQUEST_STATUS)
DLQ_PREFIX = topics.DLQ_PREFIX
Grant = tuple[ResourceType, str, Pat, tuple[Op, ...]]


dlq_topic = topics.dlq  # one spelling of a dead-letter topic's name


def centre_grants(centre_id: str) -> list[Grant]:
    group = f"centre-{centre_id}"
    inbox, dlq = topics.inbox(centre_id), dlq_topic(group)
    return [
        *[(ResourceType.TOPIC, t, Pat.LITERAL, (Op.WRITE, Op.DESCRIBE, Op.DESCRIBE_CONFIGS)) for t in SHARED],
        (ResourceType.TOPIC, inbox, Pat.LITERAL, (Op.READ, Op.DESCRIBE, Op.DESCRIBE_CONFIGS, Op.CREATE)),
        (ResourceType.GROUP, group, Pat.LITERAL, (Op.READ, Op.DESCRIBE)),
        (ResourceType.TOPIC, dlq, Pat.LITERAL, (Op.CREATE, Op.WRITE, Op.DESCRIBE, Op.DESCRIBE_CONFIGS)),
    ]


def gateway_grants() -> list[Grant]:
    return [
        *[(ResourceType.TOPIC, t, Pat.LITERAL, (Op.READ, Op.DESCRIBE, Op.DESCRIBE_CONFIGS)) for t in SHARED],
        (ResourceType.GROUP, "gateway", Pat.PREFIXED, (Op.READ, Op.DESCRIBE)),
        (ResourceType.TOPIC, topics.INBOX_PREFIX, Pat.PREFIXED,
         (Op.WRITE, Op.CREATE, Op.DESCRIBE, Op.DESCRIBE_CONFIGS)),
        # READ: the catalog feed reads its own dead letters before a rebuild, not to write them twice.
        (ResourceType.TOPIC, f"{DLQ_PREFIX}gateway", Pat.PREFIXED,
         (Op.READ, Op.WRITE, Op.CREATE, Op.DESCRIBE, Op.DESCRIBE_CONFIGS)),
    ]


def _acls(party: str, grants: list[Grant]) -> list[ACL]:
    return [ACL(f"User:{party}", "*", op, ACLPermissionType.ALLOW, ResourcePattern(rtype, name, pattern))
            for rtype, name, pattern, ops in grants for op in ops]


def _admin(bootstrap: str, security: KafkaSecurity):
    from kafka.admin import KafkaAdminClient

    return KafkaAdminClient(bootstrap_servers=bootstrap, client_id="metrofed-acls", request_timeout_ms=15000,
                            **security.client_kwargs())


def _filter(party: str) -> ACLFilter:
    return ACLFilter(f"User:{party}", None, Op.ANY, ACLPermissionType.ANY,
                     ResourcePatternFilter(ResourceType.ANY, None, Pat.ANY))


def _key(acl: ACL) -> tuple:
    p = acl.resource_pattern
    return (acl.principal, acl.operation, acl.permission_type, p.resource_type, p.resource_name, p.pattern_type)


def _wait_applied(admin, party: str, done, timeout: float) -> None:
    # The controller acknowledges an ACL change before the broker's authorizer has applied it from the
    # metadata log; DescribeAcls is answered by that authorizer, so it shows when the change is in force.
    deadline = time.monotonic() + timeout
    while True:
        acls, _error = admin.describe_acls(_filter(party))
        if done({_key(a) for a in acls}):
            return
        if time.monotonic() > deadline:
            raise TimeoutError(f"ACL change for {party} not applied by the broker within {timeout}s")
        time.sleep(0.05)


def grant(bootstrap: str, security: KafkaSecurity, party: str, grants: list[Grant], *,
          timeout: float = 15.0) -> int:
    """Creates the party's ACLs (creating an existing ACL again is a no-op on the broker) and returns once the
    broker enforces them; returns how many."""
    acls = _acls(party, grants)
    admin = _admin(bootstrap, security)
    try:
        result = admin.create_acls(acls)
        if result["failed"]:
            raise KafkaError(f"creating ACLs for {party} failed: {result['failed'][:3]}")
        wanted = {_key(a) for a in acls}
        _wait_applied(admin, party, lambda have: wanted <= have, timeout)
    finally:
        admin.close()
    return len(acls)


def grant_centre(bootstrap: str, security: KafkaSecurity, centre_id: str) -> int:
    return grant(bootstrap, security, f"centre-{centre_id}", centre_grants(centre_id))


def grant_gateway(bootstrap: str, security: KafkaSecurity) -> int:
    return grant(bootstrap, security, "gateway", gateway_grants())


def revoke_party(bootstrap: str, security: KafkaSecurity, party: str, *, timeout: float = 15.0) -> int:
    """Deletes every ACL of ``User:<party>`` and returns once the broker enforces that; returns how many.
    Its open connections keep nothing: the broker checks ACLs on every request."""
    admin = _admin(bootstrap, security)
    try:
        results = admin.delete_acls([_filter(party)])
        removed = 0
        for _f, matched, error in results:
            if error is not None and getattr(error, "errno", 0):
                raise KafkaError(f"deleting ACLs of {party} failed: {error}")
            removed += len(matched)
        _wait_applied(admin, party, lambda have: not have, timeout)
    finally:
        admin.close()
    return removed


def describe_party(bootstrap: str, security: KafkaSecurity, party: str) -> list[ACL]:
    admin = _admin(bootstrap, security)
    try:
        acls, _error = admin.describe_acls(_filter(party))
    finally:
        admin.close()
    return list(acls)


__all__ = ["centre_grants", "gateway_grants", "grant", "grant_centre", "grant_gateway", "revoke_party",
           "describe_party", "dlq_topic"]
