"""Poison records of every kind on every consumed topic of a real federation (every centre's inbox, the
request-status topic, the two catalog topics): each lands in its consumer group's dead-letter topic with
its reason, no partition is left behind (every group's committed offset passes the poison), an invalid
event naming a real request leaves it alone, and a normal request afterwards still reaches ACCEPTED.
Then a genuine DECLINED for a request whose deadline has passed: the request becomes FAILED (visible, with
the reason) and the status partition keeps moving."""

from __future__ import annotations

import datetime as dt
import sqlite3
import time
import uuid

import pytest

from metrofed.bus import topics
from metrofed.bus.dead_letter import DeadLetter
from metrofed.bus.envelope import wrap
from metrofed.bus.producer import make_producer
from metrofed.protoconv import capability_to_proto, centre_to_proto
from metrofed.seed import load_seed
from metrofed.v1 import events_pb2
from metrofed.v1 import gateway_service_pb2 as gw
from metrofed.v1 import request_pb2 as rq
from tests.e2e.conftest import E2E_CENTRES, pressure_need, sign_as, wait_for_state
from tests.integration.conftest import TopicReader

pytestmark = pytest.mark.e2e

BIG = 600_000  # characters: fits the broker (1 MB) and the dead-letter record, far beyond any column


def env_bytes(event, *, event_id: str | None = None, producer: str = "attacker") -> bytes:
    env = wrap(event, producer)
    if event_id is not None:
        env.event_id = event_id
    return env.SerializeToString()


def corrupt(event_type: str) -> bytes:
    return events_pb2.Envelope(event_id=str(uuid.uuid4()), event_type=event_type,
                               payload=b"\x0a\x05ab").SerializeToString()


def unknown_type() -> bytes:
    return events_pb2.Envelope(event_id=str(uuid.uuid4()), event_type="metrofed.v2.FromTheFuture",
                               payload=b"\x08\x01").SerializeToString()


def inbox_poison(centre_id: str) -> list[tuple[str, bytes, str]]:
    """(kind, value, reason code) for one centre's inbox."""
    def routed(**kw):
        fields = dict(request_id=str(uuid.uuid4()), enterprise_id="poison", centre_id=centre_id,
                      capability_id="pressure-transmitter-cal", need=pressure_need(), attempt=1)
        fields.update(kw)
        return events_pb2.RequestRouted(**fields)

    return [
        ("garbage", b"\xff\xfe\x00 not protobuf", "undecodable"),
        ("corrupt payload", corrupt("metrofed.v1.RequestRouted"), "undecodable"),
        ("unknown event type", unknown_type(), "unknown-type"),
        ("over-long event id", env_bytes(routed(), event_id="e" * 65), "invalid"),
        ("NUL in event id", env_bytes(routed(), event_id="nul\x00"), "invalid"),
        ("over-long request id", env_bytes(routed(request_id="r" * 65)), "invalid"),
        ("oversized enterprise id", env_bytes(routed(enterprise_id="x" * BIG)), "invalid"),
        ("domain rule: addressed to another centre", env_bytes(routed(centre_id="elsewhere")), "misaddressed"),
        ("valid cancel for an unknown request",
         env_bytes(events_pb2.RequestCancelled(request_id=str(uuid.uuid4()), centre_id=centre_id)), "unknown-request"),
    ]


def status_poison(real_request_id: str, real_centre: str) -> list[tuple[str, bytes, str]]:
    def status(**kw):
        fields = dict(request_id=str(uuid.uuid4()), centre_id=real_centre, state=rq.REQUEST_STATE_ACCEPTED,
                      attempt=1)
        fields.update(kw)
        return events_pb2.RequestStatusChanged(**fields)

    return [
        ("garbage", b"\x00\x01\x02 garbage", "undecodable"),
        ("corrupt payload", corrupt("metrofed.v1.RequestStatusChanged"), "undecodable"),
        ("unknown event type", unknown_type(), "unknown-type"),
        ("over-long event id", env_bytes(status(), event_id="e" * 65), "invalid"),
        ("over-long request id", env_bytes(status(request_id="r" * 65)), "invalid"),
        # a centre speaking for another centre id: refused as misattributed before any other check
        ("NUL in centre id", env_bytes(status(centre_id="hz\x00")), "unauthorised"),
        ("state from a newer build", env_bytes(status(state=99)), "unknown-state"),
        ("valid status for an unknown request", env_bytes(status()), "unknown-request"),
        ("oversized note, unknown request", env_bytes(status(note="n" * BIG)), "unknown-request"),
        # Naming a real request: dead-lettered, and the request must not change.
        ("domain rule: a centre reports ROUTED", env_bytes(status(request_id=real_request_id,
                                                                 state=rq.REQUEST_STATE_ROUTED)), "domain-rule"),
        ("invalid status naming a real request", env_bytes(status(request_id=real_request_id, centre_id="c" * 41,
                                                                  state=rq.REQUEST_STATE_COMPLETED)), "unauthorised"),
    ]


def catalog_poison() -> list[tuple[str, str, str, bytes | None, str]]:
    """(topic, kind, key, value, reason code) for the compacted catalog topics."""
    seed = load_seed()[0]
    tag = uuid.uuid4().hex[:8]
    long_id = capability_to_proto(seed.capabilities[0])
    long_id.capability_id = "c" * 61
    inverted = capability_to_proto(seed.capabilities[0])
    inverted.capability_id = f"poison-{tag}"
    inverted.bands[0].min, inverted.bands[0].max = inverted.bands[0].max + 1, inverted.bands[0].min
    bad_centre = centre_to_proto(seed.profile)
    bad_centre.centre_id = "Not/A Centre"
    cap = lambda c: env_bytes(events_pb2.CapabilityPublished(capability=c))  # noqa: E731
    return [
        (topics.CAPABILITIES, "garbage", f"poison-{tag}/a", b"\xff garbage", "undecodable"),
        (topics.CAPABILITIES, "corrupt payload", f"poison-{tag}/b", corrupt("metrofed.v1.CapabilityPublished"),
         "undecodable"),
        (topics.CAPABILITIES, "unknown event type", f"poison-{tag}/c", unknown_type(), "unknown-type"),
        (topics.CAPABILITIES, "over-long capability id", f"poison-{tag}/d", cap(long_id), "invalid"),
        (topics.CAPABILITIES, "domain rule: band min above max", f"poison-{tag}/e", cap(inverted), "invalid"),
        (topics.CAPABILITIES, "tombstone naming nothing", f"poison-{tag}", None, "invalid"),
        (topics.CENTRES, "garbage", f"poison-{tag}", b"\x00 garbage", "undecodable"),
        (topics.CENTRES, "invalid centre id", f"poison-{tag}-2",
         env_bytes(events_pb2.CentreRegistered(profile=bad_centre)), "invalid"),
    ]


def committed(bootstrap: str, group: str, security) -> dict:
    from kafka.admin import KafkaAdminClient

    admin = KafkaAdminClient(bootstrap_servers=bootstrap, client_id="e2e-offsets", **security.client_kwargs())
    try:
        return {tp: m.offset for tp, m in admin.list_group_offsets({group: None}).get(group, {}).items()}
    finally:
        admin.close()


def wait_committed_past(bootstrap: str, security, group: str, ends: dict, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while True:
        have = committed(bootstrap, group, security)
        behind = {tp: (have.get(tp), end) for tp, end in ends.items() if (have.get(tp) or 0) < end}
        if not behind:
            return
        if time.monotonic() > deadline:
            raise AssertionError(f"group {group} stuck behind the poison: {behind}")
        time.sleep(0.2)


def end_offsets(bootstrap: str, security, topic: str) -> dict:
    reader = TopicReader(bootstrap, topic, security)
    try:
        return reader.consumer.end_offsets(reader.parts)
    finally:
        reader.close()


def test_poison_on_every_consumed_topic_is_dead_lettered_and_nothing_is_stuck(federation, gateway, kafka_admin):
    bootstrap, admin = federation.kafka_bootstrap, kafka_admin
    real = gateway.SubmitRequest(gw.SubmitRequestRequest(need=pressure_need()),
                                 timeout=10).request
    real = wait_for_state(gateway, real.request_id, rq.REQUEST_STATE_ACCEPTED)

    readers = {group: TopicReader(bootstrap, topics.dlq(group), admin)
               for group in ["gateway", topics.CATALOG_GROUP, *[f"centre-{c}" for c in E2E_CENTRES]]}
    producer = make_producer(bootstrap, "e2e-poison", security=admin)
    started = time.monotonic()
    expected: dict[str, dict[tuple[str, int, int], tuple[str, str]]] = {g: {} for g in readers}
    try:
        def put(group, topic, kind, key, value, code, party):
            # signed by the party that may write it (a buggy producer, not a forger: attacks.py has those),
            # so the checks behind the signature are what must catch it
            value, headers = sign_as(federation, party, topic, key, value)
            meta = producer.send(topic, key=key.encode(), value=value, headers=headers).get(timeout=15)
            expected[group][(topic, meta.partition, meta.offset)] = (kind, code)

        for centre in E2E_CENTRES:
            for kind, value, code in inbox_poison(centre):
                put(f"centre-{centre}", topics.inbox(centre), kind, str(uuid.uuid4()), value, code, "gateway")
        for i, (kind, value, code) in enumerate(status_poison(real.request_id, real.assigned_centre_id)):
            put("gateway", topics.REQUEST_STATUS, kind, real.request_id if "real" in kind or "ROUTED" in kind
                else f"poison-{i}-{uuid.uuid4()}", value, code, f"centre-{real.assigned_centre_id}")
        for topic, kind, key, value, code in catalog_poison():
            put(topics.CATALOG_GROUP, topic, kind, key, value, code, f"centre-{key.split('/', 1)[0]}")
        total = sum(len(e) for e in expected.values())

        # Every poison record is in its group's dead-letter topic, with its reason.
        for group, want in expected.items():
            got: dict = {}
            deadline = time.monotonic() + 60
            while set(want) - set(got):
                if time.monotonic() > deadline:
                    missing = {o: want[o] for o in set(want) - set(got)}
                    raise AssertionError(f"{topics.dlq(group)}: not dead-lettered within 60 s: {missing}")
                for r in readers[group].settle(seconds=0.3):
                    d = DeadLetter.from_record(r)
                    if d.origin in want:
                        got[d.origin] = d
            for origin, (kind, code) in want.items():
                d = got[origin]
                assert (d.reason_code, d.group) == (code, group), f"{kind}: {d.reason_code} ({d.reason})"
                assert d.reason, kind
        dead_lettered_in = time.monotonic() - started

        # No partition is left behind: every consumer group's committed offset passes the poison.
        wait_committed_past(bootstrap, admin, "gateway", end_offsets(bootstrap, admin, topics.REQUEST_STATUS))
        for centre in E2E_CENTRES:
            wait_committed_past(bootstrap, admin, f"centre-{centre}", end_offsets(bootstrap, admin, topics.inbox(centre)))

        # The invalid events naming the real request left it as it was.
        after = gateway.GetRequest(gw.GetRequestRequest(request_id=real.request_id), timeout=5).request
        assert after.state == rq.REQUEST_STATE_ACCEPTED
        assert [(h.state, h.note) for h in after.history] == [(h.state, h.note) for h in real.history]

        # And a normal request still goes all the way.
        sub = gateway.SubmitRequest(gw.SubmitRequestRequest(need=pressure_need()),
                                    timeout=10).request
        wait_for_state(gateway, sub.request_id, rq.REQUEST_STATE_ACCEPTED)
        print(f"\npoison: {total} records on {len(E2E_CENTRES) + 3} topics, all dead-lettered with their "
              f"reason within {dead_lettered_in:.1f} s; 0 partitions stuck; a new request reached ACCEPTED "
              f"{time.monotonic() - started:.1f} s after the first poison record")
    finally:
        producer.close(timeout=5)
        for r in readers.values():
            r.close()


def test_a_decline_after_the_deadline_passed_makes_the_request_failed_and_the_partition_moves(federation, gateway,
                                                                                             kafka_admin):
    """The centre is down when the request arrives; by the time its DECLINED comes, the deadline has passed
    (we move the stored deadline back a day: the clock cannot be). The gateway cannot route it again."""
    bootstrap = federation.kafka_bootstrap
    today = dt.date.today()
    need = pressure_need()
    need.deadline = today.isoformat()
    centre = gateway.RouteNeed(gw.RouteNeedRequest(need=need), timeout=10).decision.candidates[0].centre_id
    federation.stop(f"centre-{centre}")
    producer = make_producer(bootstrap, "e2e-deadline", security=kafka_admin)
    try:
        req = gateway.SubmitRequest(gw.SubmitRequestRequest(need=need),
                                    timeout=10).request
        assert (req.state, req.assigned_centre_id) == (rq.REQUEST_STATE_ROUTED, centre)
        need.deadline = (today - dt.timedelta(days=1)).isoformat()
        db = federation.workdir / "db" / "gateway.db"
        with sqlite3.connect(db, timeout=30) as conn:
            conn.execute("UPDATE requests SET need = ? WHERE request_id = ?", (need.SerializeToString(),
                                                                               req.request_id))
        declined = events_pb2.RequestStatusChanged(request_id=req.request_id, centre_id=centre, attempt=1,
                                                   state=rq.REQUEST_STATE_DECLINED, note="instrument broken")
        value, headers = sign_as(federation, f"centre-{centre}", topics.REQUEST_STATUS, req.request_id,
                                 env_bytes(declined, producer=centre))
        meta = producer.send(topics.REQUEST_STATUS, key=req.request_id.encode(), value=value,
                             headers=headers).get(timeout=15)

        failed = wait_for_state(gateway, req.request_id, rq.REQUEST_STATE_FAILED)
        assert failed.history[-1].state == rq.REQUEST_STATE_FAILED
        assert "need.deadline" in failed.history[-1].note and "in the past" in failed.history[-1].note
        assert failed.assigned_centre_id == centre  # not routed anywhere else
        assert [h.state for h in failed.history].count(rq.REQUEST_STATE_ROUTED) == 1
        # The status partition moved past it (before: retried forever, holding every request on it).
        wait_committed_past(bootstrap, kafka_admin, "gateway",
                            {tp: meta.offset + 1 for tp in end_offsets(bootstrap, kafka_admin, topics.REQUEST_STATUS)
                             if tp.partition == meta.partition})
    finally:
        producer.close(timeout=5)
        federation.restart(f"centre-{centre}")
        federation.wait_ready(f"centre-{centre}", timeout=120)
    # Back, the centre accepts its old inbox item: too late, the request stays FAILED for a person to decide.
    sub = gateway.SubmitRequest(gw.SubmitRequestRequest(need=pressure_need()),
                                timeout=10).request
    wait_for_state(gateway, sub.request_id, rq.REQUEST_STATE_ACCEPTED)
    final = gateway.GetRequest(gw.GetRequestRequest(request_id=req.request_id), timeout=5).request
    assert final.state == rq.REQUEST_STATE_FAILED
