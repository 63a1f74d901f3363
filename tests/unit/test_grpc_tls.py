"""Every metrofed gRPC server speaks TLS with its party certificate; clients verify it against the CA."""

from __future__ import annotations

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc

from metrofed import client
from metrofed.config import ConfigError, TLSFiles, load_settings
from metrofed.grpc_server import Server
from metrofed.pki import DevCA


@pytest.fixture
def tls_server(tmp_path):
    ca = DevCA(tmp_path / "home")
    tls = ca.issue("gateway")
    server = Server("127.0.0.1:0", [], [], tls=TLSFiles(str(tls.ca), str(tls.cert), str(tls.key)),
                    auth=None)  # the furniture alone; authentication is tests/e2e/test_trust_attacks.py's
    server.start()
    server.set_serving(True)
    yield server, ca
    server.stop(grace=0)


def health(channel: grpc.Channel) -> int:
    stub = health_pb2_grpc.HealthStub(channel)
    return stub.Check(health_pb2.HealthCheckRequest(), timeout=5).status


def test_a_client_trusting_the_ca_gets_health_over_tls(tls_server):
    server, ca = tls_server
    with grpc.secure_channel(f"127.0.0.1:{server.port}", client.channel_credentials(ca.ca_cert_path)) as ch:
        assert health(ch) == health_pb2.HealthCheckResponse.SERVING


def test_the_client_helpers_use_tls_with_the_ca_from_the_environment(tls_server, monkeypatch):
    server, ca = tls_server
    monkeypatch.setenv("METROFED_TLS_CA", str(ca.ca_cert_path))
    monkeypatch.delenv("METROFED_INSECURE", raising=False)
    assert health(client.channel(f"127.0.0.1:{server.port}")) == health_pb2.HealthCheckResponse.SERVING


def test_a_plaintext_client_is_refused_by_a_tls_server(tls_server):
    server, _ = tls_server
    with grpc.insecure_channel(f"127.0.0.1:{server.port}") as ch:
        with pytest.raises(grpc.RpcError) as err:
            health(ch)
    assert err.value.code() == grpc.StatusCode.UNAVAILABLE


def test_a_client_trusting_another_ca_refuses_the_server(tls_server, tmp_path):
    server, _ = tls_server
    other = DevCA(tmp_path / "elsewhere").ensure()
    with grpc.secure_channel(f"127.0.0.1:{server.port}", client.channel_credentials(other.ca_cert_path)) as ch:
        with pytest.raises(grpc.RpcError) as err:
            health(ch)
    assert err.value.code() == grpc.StatusCode.UNAVAILABLE


def test_a_client_without_a_ca_fails_naming_the_variable(monkeypatch):
    monkeypatch.delenv("METROFED_TLS_CA", raising=False)
    monkeypatch.delenv("METROFED_INSECURE", raising=False)
    with pytest.raises(ConfigError, match="METROFED_TLS_CA"):
        client.gateway("127.0.0.1:1")


@pytest.mark.parametrize("missing", ["METROFED_TLS_CA", "METROFED_TLS_CERT", "METROFED_TLS_KEY"])
def test_a_service_without_its_tls_identity_fails_naming_the_variable(tmp_path, monkeypatch, missing):
    tls = DevCA(tmp_path).issue("centre-x")
    monkeypatch.delenv("METROFED_INSECURE", raising=False)
    for name, value in tls.env().items():
        monkeypatch.setenv(name, value)
    monkeypatch.delenv(missing)
    with pytest.raises(ConfigError, match=missing):
        load_settings("sqlite://")


def test_insecure_mode_is_explicit(monkeypatch):
    for name in ("METROFED_TLS_CA", "METROFED_TLS_CERT", "METROFED_TLS_KEY"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("METROFED_INSECURE", "1")
    settings = load_settings("sqlite://")
    assert settings.tls is None
    assert settings.kafka_security.client_kwargs() == {"security_protocol": "PLAINTEXT"}
