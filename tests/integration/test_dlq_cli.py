"""``metrofed dlq list`` and ``metrofed dlq redrive`` against the real broker: the table shows origin,
event type, reason and time; a re-drive re-publishes the original record to its origin partition with a
``metrofed-redriven-from`` header, and is never done twice (one by one or ``--all``)."""

from __future__ import annotations

import uuid

import pytest

from metrofed.bus import topics
from metrofed.bus.admin import ensure_topics
from metrofed.bus.dead_letter import REDRIVEN_FROM, DeadLetterWriter
from metrofed.bus.topics import TopicSpec
from metrofed.cli import main
from tests.integration.conftest import FakeRecord, delete_topics, unique

pytestmark = [pytest.mark.integration, pytest.mark.timeout(120)]


@pytest.fixture
def dead_letters(kafka, kafka_admin, producer, monkeypatch):
    """Three dead letters of a fresh group, their origins on partitions 1, 0, 1 of a fresh topic."""
    group = unique("it-cli")
    origin = f"it.origin.{uuid.uuid4().hex[:10]}"
    ensure_topics(kafka.bootstrap, [TopicSpec(origin, 2, {"min.insync.replicas": "1"}), topics.dlq_spec(group)],
                  security=kafka_admin)
    # The operator's identity, as an operator's shell would have it (metrofed.cli.bus).
    monkeypatch.setenv("METROFED_TLS_CERT", kafka_admin.cert)
    monkeypatch.setenv("METROFED_TLS_KEY", kafka_admin.key)
    writer = DeadLetterWriter(producer, group)
    originals = [
        FakeRecord(origin, b"\xff garbage", b"k0", partition=1, offset=11,
                   headers=[("metrofed-event-type", b"metrofed.v1.RequestRouted"), ("x-trace", b"t0")]),
        FakeRecord(origin, b"payload-1", b"k1", partition=0, offset=12,
                   headers=[("metrofed-event-type", b"metrofed.v2.SomethingNew")]),
        FakeRecord(origin, b"payload-2", None, partition=1, offset=13, headers=[]),
    ]
    writer.write(originals[0], "undecodable", "Error parsing message: wire format was corrupt")
    writer.write(originals[1], "unknown-type", "event type 'metrofed.v2.SomethingNew' is unknown to this build")
    writer.write(originals[2], "invalid", "envelope.event_id: is 65 characters long; at most 64 are allowed")
    yield group, origin, originals
    delete_topics(kafka.bootstrap, [origin, topics.dlq(group)], kafka_admin)


def run(capsys, *argv) -> tuple[int, str, str]:
    code = main(["dlq", *argv])
    out = capsys.readouterr()
    return code, out.out, out.err


def test_list_shows_a_readable_table(kafka, dead_letters, capsys, monkeypatch):
    group, origin, _ = dead_letters
    monkeypatch.setenv("KAFKA_BOOTSTRAP", kafka.bootstrap)  # as the services read it
    code, out, _ = run(capsys, "list", "--group", group)
    assert code == 0
    lines = out.splitlines()
    assert lines[0] == f"{topics.dlq(group)}: 3 dead letter(s)"
    assert lines[1].split() == ["OFFSET", "ORIGIN", "EVENT", "TYPE", "CODE", "FAILED", "AT", "REDRIVEN", "REASON"]
    rows = lines[2:]
    assert len(rows) == 3
    assert rows[0].split()[:4] == ["0", f"{origin}[1]@11", "metrofed.v1.RequestRouted", "undecodable"]
    assert rows[1].split()[:4] == ["1", f"{origin}[0]@12", "metrofed.v2.SomethingNew", "unknown-type"]
    assert rows[2].split()[:4] == ["2", f"{origin}[1]@13", "-", "invalid"]
    assert rows[2].split()[5] == "no" and "65 characters long" in rows[2]
    assert rows[0].split()[4].startswith("20")  # ISO time of the failure

    code, out, _ = run(capsys, "list", "--group", group, "--limit", "1")
    assert "showing the last 1" in out.splitlines()[0] and len(out.splitlines()) == 3

    code, out, _ = run(capsys, "list")  # every group with a dead-letter topic
    assert f"{topics.dlq(group)}: 3 dead letter(s)" in out


def test_redrive_republishes_the_original_once(kafka, dead_letters, capsys, topic_reader):
    group, origin, originals = dead_letters
    reader = topic_reader(origin)
    b = ["--bootstrap", kafka.bootstrap]

    code, out, _ = run(capsys, *b, "redrive", "--group", group, "--offset", "1")
    assert code == 0 and "1 re-driven" in out
    (again,) = reader.read(1)
    assert (again.partition, again.key, again.value) == (0, b"k1", b"payload-1")
    headers = dict(again.headers)
    assert headers[REDRIVEN_FROM] == f"{topics.dlq(group)}/0/1".encode()
    assert headers["metrofed-event-type"] == b"metrofed.v2.SomethingNew"
    assert not any(k.startswith("metrofed-dlq-") for k in headers)

    code, _, err = run(capsys, *b, "redrive", "--group", group, "--offset", "1")
    assert code == 1 and "re-driven already" in err
    code, _, err = run(capsys, *b, "redrive", "--group", group, "--offset", "7")
    assert code == 1 and "no dead letter" in err

    code, out, _ = run(capsys, *b, "redrive", "--group", group, "--all")
    assert code == 0 and "2 re-driven" in out
    records = reader.read(3)
    assert [(r.partition, r.key, r.value) for r in records[1:]] == [(1, b"k0", b"\xff garbage"), (1, None, b"payload-2")]
    assert dict(records[1].headers)["x-trace"] == b"t0"  # the original headers travel with it
    assert [dict(r.headers)[REDRIVEN_FROM] for r in records[1:]] == [f"{topics.dlq(group)}/0/{o}".encode()
                                                                      for o in (0, 2)]

    code, out, _ = run(capsys, *b, "redrive", "--group", group, "--all")
    assert code == 0 and "0 re-driven" in out
    assert len(reader.settle(seconds=1.0)) == 3  # nothing re-published twice
    code, out, _ = run(capsys, *b, "list", "--group", group)
    assert [line.split()[5] for line in out.splitlines()[2:]] == ["yes", "yes", "yes"]
