"""``metrofed dlq``: look at dead letters and re-drive them.

    metrofed dlq list [--group G] [--limit N]
    metrofed dlq redrive --group G (--offset N | --all)

``redrive`` re-publishes the original record (key, value, headers) to its origin topic and partition with
a ``metrofed-redriven-from: <dlq topic>/<partition>/<offset>`` header. Which dead letters were re-driven is
remembered in Kafka itself, as the committed offset of the consumer group ``metrofed-dlq-redrive.<group>``
on the dead-letter topic: everything below the committed offset was re-driven (or could not be and was
reported); dead letters re-driven one by one above it are listed in the commit's metadata. So a re-drive
is never done twice, whoever runs it and from wherever.

Bootstrap from ``KAFKA_BOOTSTRAP`` (as the services) or ``--bootstrap``; the identity is the operator's
(metrofed.cli.bus: METROFED_TLS_* or the federation home's ``admin``).
"""

from __future__ import annotations

import sys
import time

from kafka.structs import OffsetAndMetadata, TopicPartition

from metrofed.bus import topics
from metrofed.bus.consumer import make_reader
from metrofed.bus.dead_letter import REDRIVEN_FROM, VALUE_OMITTED, DeadLetter
from metrofed.bus.producer import make_producer
from metrofed.bus.security import KafkaSecurity
from metrofed.cli.bus import add_bus_arguments, bus_from_args

READ_TIMEOUT = 30.0  # seconds to read a dead-letter topic to its end


def register(sub) -> None:
    parser = sub.add_parser("dlq", help="dead-lettered records: list, re-drive")
    add_bus_arguments(parser)
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    ls = commands.add_parser("list", help="dead letters as a table (oldest first)")
    ls.add_argument("--group", help="one consumer group (default: every group with a dead-letter topic)")
    ls.add_argument("--limit", type=int, default=50, help="at most this many per group, the latest (default 50)")
    ls.set_defaults(func=cmd_list)

    rd = commands.add_parser("redrive", help="re-publish dead letters to their origin topic")
    rd.add_argument("--group", required=True, help="the consumer group whose dead letters to re-drive")
    which = rd.add_mutually_exclusive_group(required=True)
    which.add_argument("--offset", type=int, help="the dead letter at this offset of the group's DLQ topic")
    which.add_argument("--all", action="store_true", help="every dead letter not re-driven yet")
    rd.set_defaults(func=cmd_redrive)


def cursor_group(group: str) -> str:
    return f"metrofed-dlq-redrive.{group}"


# ---- reading ---------------------------------------------------------------------------------------------

def dlq_groups(bootstrap: str, security: KafkaSecurity) -> list[str]:
    reader = make_reader(bootstrap, "metrofed-cli-dlq", security=security)
    try:
        names = reader.topics()
    finally:
        reader.close()
    return sorted(n[len(topics.DLQ_PREFIX):-len(".v1")] for n in names
                  if n.startswith(topics.DLQ_PREFIX) and n.endswith(".v1"))


def read_dead_letters(bootstrap: str, security: KafkaSecurity, group: str, start: int | None = None) -> list[DeadLetter]:
    """Every dead letter of ``group`` from ``start`` (default: the beginning) to the end taken now."""
    topic = topics.dlq(group)
    reader = make_reader(bootstrap, "metrofed-cli-dlq", security=security)
    try:
        if not reader.partitions_for_topic(topic):
            raise SystemExit(f"no dead-letter topic {topic} (no such group, or its process never started)")
        tp = TopicPartition(topic, 0)
        reader.assign([tp])
        if start is None:
            reader.seek_to_beginning(tp)
        else:
            reader.seek(tp, start)
        end = reader.end_offsets([tp])[tp]
        out: list[DeadLetter] = []
        deadline = time.monotonic() + READ_TIMEOUT
        while reader.position(tp) < end:
            if time.monotonic() > deadline:
                raise SystemExit(f"reading {topic} took more than {READ_TIMEOUT:.0f} s")
            for records in reader.poll(timeout_ms=200).values():
                out.extend(DeadLetter.from_record(r) for r in records if r.offset < end)
        return out
    finally:
        reader.close()


class Cursor:
    """What has been re-driven: every offset below ``below``, and the offsets in ``done``."""

    def __init__(self, bootstrap: str, security: KafkaSecurity, group: str):
        self.topic = topics.dlq(group)
        self.tp = TopicPartition(self.topic, 0)
        self.consumer = make_reader(bootstrap, "metrofed-cli-dlq-redrive", security=security,
                                    group=cursor_group(group))
        committed = self.consumer.committed(self.tp, metadata=True)
        self.below = committed.offset if committed is not None and committed.offset >= 0 else 0
        meta = committed.metadata if committed is not None else ""
        self.done = {int(x) for x in (meta or "").split(",") if x.strip().isdigit() and int(x) >= self.below}

    def redriven(self, offset: int) -> bool:
        return offset < self.below or offset in self.done

    def mark(self, offset: int) -> None:
        self.done.add(offset)
        while self.below in self.done:  # a contiguous run becomes part of the committed offset
            self.done.discard(self.below)
            self.below += 1
        self.consumer.commit({self.tp: OffsetAndMetadata(self.below, ",".join(map(str, sorted(self.done))), -1)})

    def close(self) -> None:
        self.consumer.close(autocommit=False)


# ---- commands --------------------------------------------------------------------------------------------

def _cell(text: str, width: int) -> str:
    text = " ".join(text.split())
    return text if len(text) <= width else text[:width - 1] + "…"


def cmd_list(args) -> int:
    bootstrap, security = bus_from_args(args)
    groups = [args.group] if args.group else dlq_groups(bootstrap, security)
    if not groups:
        print("no dead-letter topics")
        return 0
    for group in groups:
        letters = read_dead_letters(bootstrap, security, group)
        cursor = Cursor(bootstrap, security, group)
        try:
            shown = letters[-args.limit:] if args.limit > 0 else letters
            print(f"{topics.dlq(group)}: {len(letters)} dead letter(s)"
                  + (f", showing the last {len(shown)}" if len(shown) < len(letters) else ""))
            if not shown:
                continue
            print(f"  {'OFFSET':>6}  {'ORIGIN':<44}  {'EVENT TYPE':<32}  {'CODE':<16}  {'FAILED AT':<29}  "
                  f"{'REDRIVEN':<8}  REASON")
            for d in shown:
                origin = f"{d.origin_topic}[{d.origin_partition}]@{d.origin_offset}"
                print(f"  {d.offset:>6}  {_cell(origin, 44):<44}  {_cell(d.event_type or '-', 32):<32}  "
                      f"{_cell(d.reason_code, 16):<16}  {d.failed_at:<29}  "
                      f"{'yes' if cursor.redriven(d.offset) else 'no':<8}  {_cell(d.reason, 120)}")
        finally:
            cursor.close()
    return 0


def cmd_redrive(args) -> int:
    bootstrap, security = bus_from_args(args)
    cursor = Cursor(bootstrap, security, args.group)
    producer = make_producer(bootstrap, client_id="metrofed-cli-dlq-redrive", security=security)
    try:
        if args.all:
            letters = [d for d in read_dead_letters(bootstrap, security, args.group, cursor.below) if not cursor.redriven(d.offset)]
        else:
            if cursor.redriven(args.offset):
                print(f"{cursor.topic}@{args.offset} was re-driven already; not doing it twice", file=sys.stderr)
                return 1
            letters = [d for d in read_dead_letters(bootstrap, security, args.group, args.offset)[:1] if d.offset == args.offset]
            if not letters:
                print(f"no dead letter at {cursor.topic}@{args.offset}", file=sys.stderr)
                return 1
        redriven = unsendable = 0
        for d in letters:
            if any(k == VALUE_OMITTED for k, _ in d.headers) or not d.origin_topic or d.origin_partition < 0:
                print(f"{cursor.topic}@{d.offset}: cannot re-drive (the original value or origin is missing)",
                      file=sys.stderr)
                unsendable += 1
                if args.all:
                    cursor.mark(d.offset)  # reported once; never re-drivable
                continue
            headers = [(k, v) for k, v in d.headers if k != REDRIVEN_FROM]
            headers.append((REDRIVEN_FROM, f"{d.topic}/{d.partition}/{d.offset}".encode()))
            # The origin partition, not the key's hash: the same partition whatever partitioner sent it.
            producer.send(d.origin_topic, key=d.key, value=d.value, headers=headers,
                          partition=d.origin_partition).get(timeout=30)
            cursor.mark(d.offset)  # after the acknowledgement: a crash in between re-drives it once more
            redriven += 1
            print(f"re-drove {cursor.topic}@{d.offset} -> {d.origin_topic}[{d.origin_partition}] "
                  f"({d.reason_code}: {_cell(d.reason, 80)})")
        print(f"{redriven} re-driven" + (f", {unsendable} could not be" if unsendable else ""))
        return 0 if not unsendable or redriven else 1
    finally:
        producer.close(timeout=5)
        cursor.close()
