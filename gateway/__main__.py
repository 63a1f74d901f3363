"""Entry point of the enterprise-facing gateway.

    python -m gateway [--ready-file PATH]

Starts: migrations, outbox relay, catalog feed (rebuild from offset 0), gRPC server (NOT_SERVING until
the catalog's first rebuild is installed), status consumer, silence sweeper. SIGTERM stops it.
"""

from __future__ import annotations

import argparse
import datetime as dt
import logging
import os
import signal
import sys
import threading
from pathlib import Path

from sqlalchemy.orm import sessionmaker

from metrofed import telemetry
from metrofed.bus import topics
from metrofed.bus.admin import ensure_topics
from metrofed.bus.consumer import ConsumerLoop, make_consumer
from metrofed.bus.dead_letter import DeadLetterWriter
from metrofed.bus.producer import make_producer
from metrofed.bus.signed import authenticated, status_from_its_centre
from metrofed.config import _env_float, load_settings
from metrofed.db.engine import make_engine, upgrade_to_head
from metrofed.db.outbox import OutboxRelay
from metrofed.domain.catalog import Catalog
from metrofed.grpc_server import Server, wait_for_termination_signal
from metrofed.trust.grpc_auth import AuthInterceptor, allow_anonymous_callers
from metrofed.trust.runtime import load_service_trust
from metrofed.v1 import gateway_service_pb2, gateway_service_pb2_grpc
from gateway.app import GatewayApp
from gateway.catalog_feed import CatalogFeed
from gateway.grpc_api import GatewayServicer
from gateway.models import Outbox

MIGRATIONS = Path(__file__).parent / "migrations"
log = logging.getLogger("metrofed.gateway")
STATUS_GROUP = "gateway"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m gateway")
    parser.add_argument("--ready-file", type=Path, help="written with host:port once the gateway is serving")
    args = parser.parse_args(argv)
    logging.basicConfig(level=os.environ.get("LOG_LEVEL", "INFO"),
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    logging.getLogger("kafka").setLevel(os.environ.get("KAFKA_LOG_LEVEL", "WARNING"))
    settings = load_settings(default_database_url="sqlite:///var/gateway/gateway.db")
    # The response SLA of a centre that declares none; the margin for clocks that disagree; how often the
    # sweeper looks for requests past their deadline (docs/failover.md).
    silence = dt.timedelta(seconds=_env_float("METROFED_SILENCE_SECONDS", 300))
    skew = dt.timedelta(seconds=_env_float("METROFED_CLOCK_SKEW_SECONDS", 5))
    sweep_every = _env_float("METROFED_SWEEP_SECONDS", 5)
    telemetry.setup_tracing("metrofed-gateway", zipkin_endpoint=settings.zipkin_endpoint,
                            otlp_endpoint=settings.otlp_endpoint)

    trust = None if settings.insecure else load_service_trust(settings, "gateway")
    if trust is None:
        log.warning("METROFED_INSECURE=1: no TLS, no caller credentials, no event signatures (benchmarks only)")
        allow_anonymous_callers()

    engine = make_engine(settings.database_url)
    upgrade_to_head(engine, MIGRATIONS)
    sessions = sessionmaker(engine, expire_on_commit=False)
    bus = settings.kafka_security
    ensure_topics(settings.kafka_bootstrap, [*topics.federation_topics(settings.topic_replication),
                                            topics.dlq_spec(STATUS_GROUP, settings.topic_replication),
                                            topics.dlq_spec(topics.CATALOG_GROUP, settings.topic_replication)],
                  security=bus)

    producer = make_producer(settings.kafka_bootstrap, client_id="gateway", security=bus)
    relay = OutboxRelay(sessions, Outbox, producer, signer=trust and trust.signer,
                        poll_seconds=settings.outbox_poll_seconds,
                        # a key waits at most 2 s between tries: after a broker restart every key has failed a
                        # few times, and a longer wait only delays its first send (docs/failover.md)
                        retry_max_seconds=2.0, name="outbox-gateway").start()
    catalog = Catalog()
    feed = CatalogFeed(settings.kafka_bootstrap, catalog, security=bus,
                       topic_replication=settings.topic_replication, verifier=trust and trust.events,
                       dead_letters=DeadLetterWriter(producer, topics.CATALOG_GROUP)).start()
    app = GatewayApp(catalog, sessions, on_commit=relay.notify, default_sla=silence, clock_skew=skew)

    server = Server(settings.listen,
                    [lambda s: gateway_service_pb2_grpc.add_GatewayServiceServicer_to_server(GatewayServicer(app), s)],
                    [gateway_service_pb2.DESCRIPTOR.services_by_name["GatewayService"].full_name],
                    tls=settings.tls, auth=trust and AuthInterceptor(trust.tokens))
    server.start()
    def status_consumer():
        return make_consumer(settings.kafka_bootstrap, STATUS_GROUP, "gateway-status", [topics.REQUEST_STATUS],
                             security=bus)

    # the factory lets the loop replace a consumer that stopped fetching (metrofed/bus/consumer.py)
    status = ConsumerLoop(status_consumer(),
                          authenticated(trust.events, app.on_status_event, status_from_its_centre)
                          if trust else app.on_status_event, group=STATUS_GROUP, parenting="child",
                          name="status", dead_letters=DeadLetterWriter(producer, STATUS_GROUP),
                          consumer_factory=status_consumer).start()

    stop = threading.Event()

    def sweeper():
        while not stop.wait(sweep_every):
            try:
                moved = app.sweep_silent()
                if moved:
                    log.info("failed over %d requests whose centre stayed silent past its deadline", moved)
            except Exception:  # noqa: BLE001 - next round
                log.exception("silence sweep failed")

    threading.Thread(target=sweeper, name="silence-sweeper", daemon=True).start()

    # SIGHUP: rebuild the catalog from offset 0 (the current one keeps serving until the new one is ready).
    signal.signal(signal.SIGHUP, lambda *_: feed.request_rebuild())
    catalog.wait_ready()
    server.set_serving(True)
    host = settings.listen.rsplit(":", 1)[0]
    log.info("gateway serving on %s:%d with %d capabilities from %d centres", host, server.port,
             len(catalog.current()), len(catalog.current().centres))
    if args.ready_file:
        args.ready_file.write_text(f"{host}:{server.port}\n")

    wait_for_termination_signal()
    stop.set()
    server.stop(grace=5)
    status.stop()
    feed.stop()
    relay.stop()
    producer.close(timeout=5)
    return 0


if __name__ == "__main__":
    sys.exit(main())
