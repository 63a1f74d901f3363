"""W3C trace context across the real broker: the relay's PRODUCER span continues the trace captured with
the outbox row, and the ConsumerLoop's CONSUMER span is its child (one-to-one work) or starts a new
trace with a link to it (broadcast facts), as chosen per consumer in metrofed/bus/tracing.py."""

from __future__ import annotations

import pytest
from opentelemetry import trace
from opentelemetry.trace import SpanKind
from sqlalchemy.orm import sessionmaker

from metrofed.bus.consumer import ConsumerLoop, make_consumer
from metrofed.db.engine import upgrade_to_head
from metrofed.db.outbox import OutboxRelay, add_event
from metrofed.v1 import events_pb2
from services.centre.models import Outbox
from tests.integration.conftest import CENTRE_MIGRATIONS, unique, wait_until

pytestmark = [pytest.mark.integration, pytest.mark.timeout(60)]


@pytest.fixture
def sessions(tmp_path, engine_factory) -> sessionmaker:
    engine = engine_factory(f"sqlite:///{tmp_path / 'centre.db'}")
    upgrade_to_head(engine, CENTRE_MIGRATIONS)
    return sessionmaker(engine, expire_on_commit=False)


def publish_and_consume(kafka, producer, sessions, topic, span_exporter, parenting):
    """Stages one event inside an 'api' span, relays it, consumes it; returns (api, producer, consumer
    spans, the span that was current inside the handler)."""
    tracer = trace.get_tracer("tests.tracing")
    with tracer.start_as_current_span("api submit") as api:
        with sessions.begin() as s:
            event_id = add_event(s, Outbox, topic=topic, key="req-1", producer="gateway",
                                 event=events_pb2.RequestStatusChanged(request_id="req-1", centre_id="c",
                                                                       state=4, attempt=1))
    # The relay runs later on its own thread in production: no ambient context here either.
    assert trace.get_current_span() is trace.INVALID_SPAN
    assert OutboxRelay(sessions, Outbox, producer).relay_once() == 1

    inside = []

    def handler(record, decoded):
        inside.append(trace.get_current_span())

    group = unique("it-trace")
    loop = ConsumerLoop(make_consumer(kafka.bootstrap, group, group, [topic], security=kafka.admin_security),
                        handler, group=group,
                        parenting=parenting, name="trace-loop").start()
    try:
        wait_until(lambda: loop.handled >= 1, 30, what="the record to be consumed")
    finally:
        loop.stop()

    def spans(kind):
        return [s for s in span_exporter.get_finished_spans()
                if s.kind is kind and s.attributes.get("messaging.message.id") == event_id]

    (producer_span,) = spans(SpanKind.PRODUCER)
    (consumer_span,) = wait_until(lambda: spans(SpanKind.CONSUMER), 5, what="the consumer span")
    return api, producer_span, consumer_span, inside[0], event_id, group


def check_messaging_attributes(producer_span, consumer_span, topic, group, event_id):
    p, c = producer_span.attributes, consumer_span.attributes
    assert producer_span.name == f"{topic} publish"
    assert (p["messaging.system"], p["messaging.destination.name"], p["messaging.operation.type"]) == (
        "kafka", topic, "send")
    assert p["messaging.destination.partition.id"] == "0"
    assert p["messaging.kafka.offset"] == 0
    assert consumer_span.name == f"{topic} process"
    assert (c["messaging.system"], c["messaging.destination.name"], c["messaging.operation.type"]) == (
        "kafka", topic, "process")
    assert c["messaging.consumer.group.name"] == group
    assert c["messaging.message.id"] == event_id
    assert c["messaging.kafka.offset"] == 0
    assert c["messaging.kafka.message.key"] == "req-1"
    assert c["metrofed.event_type"] == "metrofed.v1.RequestStatusChanged"


def test_child_parenting_continues_the_producer_trace(kafka, producer, sessions, topic, span_exporter):
    api, producer_span, consumer_span, inside, event_id, group = publish_and_consume(
        kafka, producer, sessions, topic, span_exporter, "child")
    api_ctx = api.get_span_context()

    # api -> producer -> consumer: one trace, parent by parent.
    assert producer_span.context.trace_id == api_ctx.trace_id
    assert producer_span.parent.span_id == api_ctx.span_id
    assert consumer_span.context.trace_id == producer_span.context.trace_id
    assert consumer_span.parent is not None and consumer_span.parent.span_id == producer_span.context.span_id
    assert consumer_span.parent.is_remote  # it came through Kafka headers
    assert list(consumer_span.links) == []
    # The handler runs inside the consumer span (its DB spans and outbox rows join this trace).
    assert inside.get_span_context().span_id == consumer_span.context.span_id
    check_messaging_attributes(producer_span, consumer_span, topic, group, event_id)


def test_link_parenting_starts_a_new_trace_linked_to_the_producer(kafka, producer, sessions, topic,
                                                                  span_exporter):
    api, producer_span, consumer_span, inside, event_id, group = publish_and_consume(
        kafka, producer, sessions, topic, span_exporter, "link")

    assert producer_span.context.trace_id == api.get_span_context().trace_id
    assert consumer_span.context.trace_id != producer_span.context.trace_id
    assert consumer_span.parent is None  # a root
    (link,) = consumer_span.links
    assert (link.context.trace_id, link.context.span_id) == (producer_span.context.trace_id,
                                                             producer_span.context.span_id)
    assert inside.get_span_context().span_id == consumer_span.context.span_id
    check_messaging_attributes(producer_span, consumer_span, topic, group, event_id)
