"""W3C trace context across Kafka, in record headers, with messaging.* semantic-convention attributes.

Per event kind we choose how a consumer span relates to the producer (tested in tests/integration):
- one-to-one work (a request routed to a centre, a status back to the gateway) continues the trace:
  the consumer span is a *child*, so one enterprise request is one trace end to end;
- broadcast facts (a capability published, a centre registered) are consumed by every gateway replica
  and replayed on every rebuild: the consumer span starts its own trace with a *link* to the producer,
  so a year-old publication does not grow a trace forever.
"""

from __future__ import annotations

from contextlib import contextmanager
from typing import Iterator, Literal

from opentelemetry import context as otel_context
from opentelemetry import propagate, trace
from opentelemetry.trace import Link, SpanKind

_tracer = trace.get_tracer("metrofed.bus")

Parenting = Literal["child", "link"]


def capture_context() -> dict[str, str]:
    """The current trace context as a W3C carrier, to store beside an outbox row."""
    carrier: dict[str, str] = {}
    propagate.inject(carrier)
    return carrier


def headers_to_carrier(headers) -> dict[str, str]:
    return {k: v.decode("latin-1") for k, v in (headers or ()) if v is not None}


def start_producer_span(topic: str, key: str | None, event_id: str, event_type: str,
                        parent_carrier: dict[str, str] | None) -> tuple[trace.Span, list[tuple[str, bytes]]]:
    """Starts a PRODUCER span whose parent is the context captured when the outbox row was written.

    Returns the span and the Kafka headers to send (trace context plus event metadata). The caller
    ends the span when the broker has acknowledged the record (or records the failure on it), so the
    span measures the real publish, not just the hand-off to the client's buffer.
    """
    parent = propagate.extract(parent_carrier or {})
    span = _tracer.start_span(
        f"{topic} publish", context=parent, kind=SpanKind.PRODUCER,
        attributes={
            "messaging.system": "kafka",
            "messaging.operation.type": "send",
            "messaging.destination.name": topic,
            "messaging.message.id": event_id,
            "messaging.kafka.message.key": key or "",
            "metrofed.event_type": event_type,
        },
    )
    carrier: dict[str, str] = {}
    propagate.inject(carrier, context=trace.set_span_in_context(span, parent))
    headers = [(k, v.encode("latin-1")) for k, v in carrier.items()]
    headers += [("metrofed-event-id", event_id.encode()), ("metrofed-event-type", event_type.encode())]
    return span, headers


@contextmanager
def consumer_span(record, group: str, parenting: Parenting, event_type: str = "") -> Iterator[trace.Span]:
    producer_ctx = propagate.extract(headers_to_carrier(record.headers))
    attributes = {
        "messaging.system": "kafka",
        "messaging.operation.type": "process",
        "messaging.destination.name": record.topic,
        "messaging.destination.partition.id": str(record.partition),
        "messaging.kafka.offset": record.offset,
        "messaging.consumer.group.name": group,
        "messaging.kafka.message.key": (record.key or b"").decode("utf-8", "replace"),
        "metrofed.event_type": event_type,
    }
    if parenting == "child":
        with _tracer.start_as_current_span(f"{record.topic} process", context=producer_ctx,
                                           kind=SpanKind.CONSUMER, attributes=attributes) as span:
            yield span
    else:
        links = []
        producer_span_ctx = trace.get_current_span(producer_ctx).get_span_context()
        if producer_span_ctx.is_valid:
            links.append(Link(producer_span_ctx))
        token = otel_context.attach(otel_context.Context())  # a fresh root, not the caller's context
        try:
            with _tracer.start_as_current_span(f"{record.topic} process", kind=SpanKind.CONSUMER,
                                               links=links, attributes=attributes) as span:
                yield span
        finally:
            otel_context.detach(token)
