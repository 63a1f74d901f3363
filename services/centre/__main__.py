"""Entry point: one process per centre.

    python -m services.centre --seed seed/centres/sh-icv.yaml

Starts, in order: database migrations, the outbox relay, the gRPC server (health NOT_SERVING), the
profile and seed capabilities (through the outbox), the inbox consumer; then reports SERVING. SIGTERM
stops it in reverse order, draining what was committed.
"""

from __future__ import annotations

import sys

# pint imports numpy whenever it is installed; only the gateway's routing index needs it. Keeping it out
# of a centre process saves ~11 MB and ~60 ms of start-up per centre (pint works without it).
sys.modules.setdefault("numpy", None)

import argparse  # noqa: E402
import dataclasses  # noqa: E402
import logging  # noqa: E402
import os  # noqa: E402
import signal  # noqa: E402
import socket  # noqa: E402
from pathlib import Path  # noqa: E402

from sqlalchemy.orm import sessionmaker

from metrofed import telemetry
from metrofed.bus import topics
from metrofed.bus.admin import ensure_topics
from metrofed.bus.consumer import ConsumerLoop, make_consumer
from metrofed.bus.dead_letter import DeadLetterWriter
from metrofed.bus.producer import make_producer
from metrofed.bus.signed import authenticated, from_gateway_to
from metrofed.config import _env_float, load_settings
from metrofed.db.engine import make_engine, upgrade_to_head
from metrofed.db.outbox import OutboxRelay
from metrofed.grpc_server import Server, wait_for_termination_signal
from metrofed.trust.grpc_auth import AuthInterceptor, allow_anonymous_callers
from metrofed.trust.runtime import load_service_trust
from metrofed.seed import load_seed_file
from metrofed.v1 import centre_service_pb2, centre_service_pb2_grpc
from services.centre.app import CentreApp
from services.centre.grpc_api import CentreServicer
from services.centre.models import Outbox

MIGRATIONS = Path(__file__).parent / "migrations"
log = logging.getLogger("metrofed.centre")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m services.centre", description=__doc__.split("\n")[0])
    parser.add_argument("--seed", required=True, type=Path, help="the centre's profile and seed capabilities (YAML)")
    parser.add_argument("--ready-file", type=Path, help="written with host:port once the centre is serving")
    args = parser.parse_args(argv)
    logging.basicConfig(level=os.environ.get("LOG_LEVEL", "INFO"),
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    logging.getLogger("kafka").setLevel(os.environ.get("KAFKA_LOG_LEVEL", "WARNING"))

    seed = load_seed_file(args.seed)
    profile = seed.profile
    # The response SLA this centre declares in its profile (docs/failover.md); the seed's unless overridden.
    sla = int(_env_float("METROFED_RESPONSE_SLA_SECONDS", profile.response_sla_seconds))
    if sla != profile.response_sla_seconds:
        profile = dataclasses.replace(profile, response_sla_seconds=sla)
    centre_id = profile.centre_id
    settings = load_settings(default_database_url=f"sqlite:///var/centres/{centre_id}.db")
    telemetry.setup_tracing(f"metrofed-centre-{centre_id}", zipkin_endpoint=settings.zipkin_endpoint,
                            otlp_endpoint=settings.otlp_endpoint, attributes={"metrofed.centre_id": centre_id})

    trust = None if settings.insecure else load_service_trust(settings, f"centre-{centre_id}")
    if trust is None:
        log.warning("METROFED_INSECURE=1: no TLS, no caller credentials, no event signatures (benchmarks only)")
        allow_anonymous_callers()

    engine = make_engine(settings.database_url)
    upgrade_to_head(engine, MIGRATIONS)
    sessions = sessionmaker(engine, expire_on_commit=False)
    bus = settings.kafka_security
    group = f"centre-{centre_id}"
    # The shared topics exist already (the operator creates them): this only checks them, and creates the
    # inbox and the dead-letter topic.
    ensure_topics(settings.kafka_bootstrap, [*topics.federation_topics(settings.topic_replication),
                                            topics.inbox_spec(centre_id, settings.topic_replication),
                                            topics.dlq_spec(group, settings.topic_replication)],
                  security=bus)

    producer = make_producer(settings.kafka_bootstrap, client_id=f"centre-{centre_id}", security=bus)
    relay = OutboxRelay(sessions, Outbox, producer, signer=trust and trust.signer,
                        poll_seconds=settings.outbox_poll_seconds,
                        # a key waits at most 2 s between tries: after a broker restart every key has failed a
                        # few times, and a longer wait only delays its first send (docs/failover.md)
                        retry_max_seconds=2.0, name=f"outbox-{centre_id}").start()
    app = CentreApp(profile, sessions, on_commit=relay.notify)

    servicer = CentreServicer(app)
    server = Server(settings.listen,
                    [lambda s: centre_service_pb2_grpc.add_CentreServiceServicer_to_server(servicer, s)],
                    [centre_service_pb2.DESCRIPTOR.services_by_name["CentreService"].full_name],
                    tls=settings.tls, auth=trust and AuthInterceptor(trust.tokens, centre_id=centre_id))
    host = settings.listen.rsplit(":", 1)[0]
    # What others should dial: METROFED_ADVERTISE, else the listen address (a wildcard → this host's name).
    advertised = settings.advertise or f"{socket.gethostname() if host in ('0.0.0.0', '[::]') else host}:{server.port}"
    servicer.endpoint = app.endpoint = advertised
    server.start()

    app.ensure_registered()
    seeded = app.seed(seed.capabilities)

    def on_inbox(record, decoded):
        app.on_inbox_event(record, decoded)
        if settings.crash_after_inbox_commit and decoded is not None:
            log.warning("test fault injection: SIGKILL after the inbox commit, before the offset commit")
            os.kill(os.getpid(), signal.SIGKILL)


    def inbox_consumer():
        return make_consumer(settings.kafka_bootstrap, group, group, [topics.inbox(centre_id)], security=bus,
                             instance_id=group)

    # the factory lets the loop replace a consumer that stopped fetching (metrofed/bus/consumer.py)
    inbox = ConsumerLoop(inbox_consumer(),
                         authenticated(trust.events, on_inbox, from_gateway_to(centre_id)) if trust else on_inbox,
                         group=group, parenting="child", name="inbox",
                         dead_letters=DeadLetterWriter(producer, group), consumer_factory=inbox_consumer).start()
    server.set_serving(True)
    log.info("centre %s serving on %s:%d (%d seed capabilities published)", centre_id, host, server.port, seeded)
    if args.ready_file:
        args.ready_file.write_text(f"{host}:{server.port}\n")

    wait_for_termination_signal()
    log.info("stopping")
    server.stop(grace=5)
    inbox.stop()
    relay.stop()
    producer.close(timeout=5)
    return 0


if __name__ == "__main__":
    sys.exit(main())
