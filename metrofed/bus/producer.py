"""Kafka producer settings: nothing is acknowledged before every in-sync replica has it."""

from __future__ import annotations

from kafka import KafkaProducer

from metrofed.bus.reconnect import RECONNECT_SETTINGS
from metrofed.bus.security import KafkaSecurity


def make_producer(bootstrap: str, client_id: str, *, security: KafkaSecurity) -> KafkaProducer:
    return KafkaProducer(
        bootstrap_servers=bootstrap,
        **security.client_kwargs(),
        client_id=client_id,
        acks="all",
        enable_idempotence=True,
        linger_ms=2,
        retries=2147483647,
        max_in_flight_requests_per_connection=5,
        request_timeout_ms=15000,
        max_block_ms=15000,
        **RECONNECT_SETTINGS,
    )
