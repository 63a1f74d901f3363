"""Operator commands find the admin identity: METROFED_TLS_* when set, else the federation home's PKI."""

from __future__ import annotations

import argparse

import pytest

from metrofed.cli.bus import add_bus_arguments, bus_from_args
from metrofed.config import ConfigError
from metrofed.pki import DevCA


@pytest.fixture(autouse=True)
def clean_env(monkeypatch):
    for name in ("METROFED_TLS_CA", "METROFED_TLS_CERT", "METROFED_TLS_KEY", "METROFED_INSECURE",
                 "KAFKA_BOOTSTRAP", "METROFED_HOME"):
        monkeypatch.delenv(name, raising=False)


def parse(*argv: str) -> argparse.Namespace:
    parser = argparse.ArgumentParser()
    add_bus_arguments(parser)
    return parser.parse_args(argv)


def test_the_admin_party_of_the_home_pki(tmp_path):
    admin = DevCA(tmp_path).issue("admin")
    bootstrap, security = bus_from_args(parse("--home", str(tmp_path), "--bootstrap", "127.0.0.1:19092"))
    assert bootstrap == "127.0.0.1:19092"
    assert (security.ca, security.cert, security.key) == (str(admin.ca), str(admin.cert), str(admin.key))


def test_the_environment_wins_over_the_home(tmp_path, monkeypatch):
    DevCA(tmp_path / "home").issue("admin")
    other = DevCA(tmp_path / "other").issue("admin")
    for name, value in other.env().items():
        monkeypatch.setenv(name, value)
    _, security = bus_from_args(parse("--home", str(tmp_path / "home")))
    assert security.cert == str(other.cert)


def test_no_identity_is_an_error_naming_where_it_looked(tmp_path):
    with pytest.raises(ConfigError, match="admin"):
        bus_from_args(parse("--home", str(tmp_path)))
