"""Thin client helpers: TLS channels that verify the server against the federation's CA, OpenTelemetry client
spans, the caller's credential (a bearer JWT) and a default deadline on every call (gRPC Python does not
propagate deadlines by itself).

The CA is ``ca`` when given, else the file named by METROFED_TLS_CA; METROFED_INSECURE=1 (benchmarks
only) dials in plaintext. Callers need no client certificate: they authenticate with bearer credentials.
"""

from __future__ import annotations

import os

import grpc
from opentelemetry.instrumentation.grpc import client_interceptor
from opentelemetry.instrumentation.grpc.grpcext import intercept_channel

from metrofed.config import ConfigError, insecure
from metrofed.v1 import centre_service_pb2_grpc, gateway_service_pb2_grpc

DEFAULT_TIMEOUT = 10.0


def channel_credentials(ca: str | os.PathLike | None = None) -> grpc.ChannelCredentials:
    path = ca or os.environ.get("METROFED_TLS_CA")
    if not path:
        raise ConfigError("environment variable METROFED_TLS_CA is required (the CA that signed the servers' "
                          "certificates), or pass ca=")
    with open(path, "rb") as f:
        return grpc.ssl_channel_credentials(root_certificates=f.read())


class _CallDetails(grpc.ClientCallDetails):
    def __init__(self, details, metadata):
        self.method, self.timeout, self.credentials = details.method, details.timeout, details.credentials
        self.wait_for_ready = getattr(details, "wait_for_ready", None)
        self.compression = getattr(details, "compression", None)
        self.metadata = metadata


class _Bearer(grpc.UnaryUnaryClientInterceptor):
    """Adds ``authorization: Bearer <token>`` to every call."""

    def __init__(self, token: str):
        self._header = ("authorization", f"Bearer {token}")

    def intercept_unary_unary(self, continuation, details, request):
        return continuation(_CallDetails(details, [*(details.metadata or ()), self._header]), request)


def channel(endpoint: str, token: str | None = None, *, ca: str | os.PathLike | None = None) -> grpc.Channel:
    """A channel to ``endpoint`` that sends ``token`` (default: ``METROFED_TOKEN``) as the caller's credential."""
    if ca is None and insecure():
        raw = grpc.insecure_channel(endpoint)
    else:
        raw = grpc.secure_channel(endpoint, channel_credentials(ca))
    ch = intercept_channel(raw, client_interceptor())
    token = token if token is not None else os.environ.get("METROFED_TOKEN", "")
    if token:
        ch = grpc.intercept_channel(ch, _Bearer(token))
    return ch


def gateway(endpoint: str, token: str | None = None, *, ca: str | os.PathLike | None = None
            ) -> gateway_service_pb2_grpc.GatewayServiceStub:
    return gateway_service_pb2_grpc.GatewayServiceStub(channel(endpoint, token, ca=ca))


def centre(endpoint: str, token: str | None = None, *, ca: str | os.PathLike | None = None
           ) -> centre_service_pb2_grpc.CentreServiceStub:
    return centre_service_pb2_grpc.CentreServiceStub(channel(endpoint, token, ca=ca))


class CertificateMismatch(Exception):
    """The document a centre returned is not the one its reference names (digest or size differ)."""


def fetch_certificate(centre_stub: centre_service_pb2_grpc.CentreServiceStub, request_id: str,
                      expected, *, timeout: float = DEFAULT_TIMEOUT) -> bytes:
    """Fetches a completed request's certificate from the centre that holds it and checks it against
    ``expected`` — the ``CertificateRef`` the gateway returned with the request (``ServiceRequest.certificate``),
    not the one the centre sends along — by SHA-256 and size. Raises ``CertificateMismatch`` otherwise."""
    import hashlib

    from metrofed.v1 import centre_service_pb2

    res = centre_stub.GetCertificate(centre_service_pb2.GetCertificateRequest(request_id=request_id),
                                     timeout=timeout)
    digest = hashlib.sha256(res.document).hexdigest()
    if digest != expected.sha256.lower() or len(res.document) != expected.size_bytes:
        raise CertificateMismatch(
            f"certificate of request {request_id}: got {len(res.document)} bytes with sha256 {digest}, "
            f"expected {expected.size_bytes} bytes with sha256 {expected.sha256}")
    return res.document
