"""OpenTelemetry wiring: one tracer provider per process, exported to Zipkin (default) or OTLP.

gRPC spans come from the opentelemetry-instrumentation-grpc interceptors, SQL spans from the SQLAlchemy
instrumentation. Kafka spans are made in metrofed.bus.tracing rather than by the kafka-python
instrumentation, because that one wraps only ``send`` (ending the span before the broker's ack) and
``__next__`` (our consumers use ``poll``).
"""

from __future__ import annotations

import atexit
import logging

from opentelemetry import trace
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor

log = logging.getLogger(__name__)
_provider: TracerProvider | None = None


def setup_tracing(service_name: str, *, zipkin_endpoint: str = "", otlp_endpoint: str = "",
                  attributes: dict[str, str] | None = None) -> TracerProvider:
    """Installs the global tracer provider once; later calls return the first one."""
    global _provider
    if _provider is not None:
        return _provider
    resource = Resource.create({"service.name": service_name, **(attributes or {})})
    provider = TracerProvider(resource=resource)
    if otlp_endpoint:
        from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter

        provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter(endpoint=otlp_endpoint, insecure=True)))
    elif zipkin_endpoint:
        from opentelemetry.exporter.zipkin.json import ZipkinExporter

        provider.add_span_processor(BatchSpanProcessor(ZipkinExporter(endpoint=zipkin_endpoint)))
    trace.set_tracer_provider(provider)
    atexit.register(provider.shutdown)
    _provider = provider
    return provider


def instrument_engine(engine) -> None:
    from opentelemetry.instrumentation.sqlalchemy import SQLAlchemyInstrumentor

    SQLAlchemyInstrumentor().instrument(engine=engine, enable_commenter=False)


def current_trace_id_hex() -> str:
    ctx = trace.get_current_span().get_span_context()
    return format(ctx.trace_id, "032x") if ctx.is_valid else ""


def tracer(name: str = "metrofed"):
    return trace.get_tracer(name)
