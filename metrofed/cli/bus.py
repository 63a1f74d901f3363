"""How an operator command reaches the bus: the broker's address and the admin identity.

Every CLI group that talks to Kafka calls ``add_bus_arguments(parser)`` and ``bus_from_args(args)``. The
identity is METROFED_TLS_CA/_CERT/_KEY when set (METROFED_INSECURE=1: none), else the ``admin`` party of the
federation home's development PKI (``--home``, default METROFED_HOME or var/demo, where `make run` keeps it;
`python -m infra.devstack` keeps it in var/).
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path

from metrofed.bus.security import KafkaSecurity
from metrofed.config import TLS_ENV, ConfigError, insecure


def add_bus_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--bootstrap", default=os.environ.get("KAFKA_BOOTSTRAP", "127.0.0.1:9092"),
                        help="Kafka bootstrap host:port (default KAFKA_BOOTSTRAP or 127.0.0.1:9092)")
    parser.add_argument("--home", type=Path, default=Path(os.environ.get("METROFED_HOME", "var/demo")),
                        help="federation home holding pki/ (default METROFED_HOME or var/demo)")


def admin_security(home: Path) -> KafkaSecurity:
    if insecure() or any(os.environ.get(n) for n in TLS_ENV):
        return KafkaSecurity.from_env()
    from metrofed.pki import DevCA

    tls = DevCA(home).paths("admin")
    if not tls.cert.is_file():
        raise ConfigError(f"no admin identity at {tls.cert}: set METROFED_TLS_CA/_CERT/_KEY or --home")
    return KafkaSecurity.from_tls(tls)


def bus_from_args(args: argparse.Namespace) -> tuple[str, KafkaSecurity]:
    return args.bootstrap, admin_security(args.home)
