"""The standard furniture every metrofed gRPC server has.

Health (grpcio-health-checking), reflection (grpcio-reflection), OpenTelemetry server spans, an error
interceptor that turns domain errors into proper status codes (bad input is INVALID_ARGUMENT naming the
field, never INTERNAL), authentication and authorization of every call (``metrofed.trust.grpc_auth``), a
graceful stop on SIGTERM/SIGINT, and TLS with the process's own certificate (no client certificate asked:
callers prove who they are with bearer credentials).
"""

from __future__ import annotations

import logging
import signal
import threading
from concurrent import futures
from typing import Callable, Iterable

import grpc
from grpc_health.v1 import health, health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection
from opentelemetry.instrumentation.grpc import server_interceptor

from metrofed.api_input import check_limits, decode_request
from metrofed.config import TLSFiles
from metrofed.domain.access import Forbidden
from metrofed.domain.capability import DomainError
from metrofed.domain.lifecycle import InvalidTransition
from metrofed.errors import Conflict, NotFound, Unavailable

log = logging.getLogger(__name__)

MAX_MESSAGE_BYTES = 4 * 1024 * 1024


def _status_for(exc: BaseException) -> tuple[grpc.StatusCode, str] | None:
    if isinstance(exc, DomainError):
        return grpc.StatusCode.INVALID_ARGUMENT, str(exc)
    if isinstance(exc, Forbidden):
        return grpc.StatusCode.PERMISSION_DENIED, str(exc)
    if isinstance(exc, NotFound):
        return grpc.StatusCode.NOT_FOUND, str(exc)
    if isinstance(exc, (Conflict, InvalidTransition)):
        return grpc.StatusCode.FAILED_PRECONDITION, str(exc)
    if isinstance(exc, Unavailable):
        return grpc.StatusCode.UNAVAILABLE, str(exc)
    return None


class ErrorInterceptor(grpc.ServerInterceptor):
    """Maps domain errors to status codes, and is where every request is decoded and checked against
    the input limits (metrofed.api_input): the handler it returns takes raw bytes, because grpc's own
    decoding would answer a non-UTF-8 string with a bare INTERNAL."""

    def intercept_service(self, continuation, handler_call_details):
        handler = continuation(handler_call_details)
        if handler is None or handler.unary_unary is None:
            return handler
        inner = handler.unary_unary
        deserializer = handler.request_deserializer

        def wrapped(raw, context):
            try:
                request = raw if deserializer is None else decode_request(raw, deserializer)
                if deserializer is not None:
                    check_limits(request)
                return inner(request, context)
            except Exception as exc:  # noqa: BLE001 - mapped below; unknown ones stay INTERNAL
                mapped = _status_for(exc)
                if mapped is None:
                    log.exception("unexpected error in %s", handler_call_details.method)
                    raise
                context.abort(*mapped)

        return grpc.unary_unary_rpc_method_handler(
            wrapped, request_deserializer=None, response_serializer=handler.response_serializer)


def server_credentials(tls: TLSFiles) -> grpc.ServerCredentials:
    with open(tls.key, "rb") as k, open(tls.cert, "rb") as c:
        return grpc.ssl_server_credentials([(k.read(), c.read())])


class Server:
    """``tls`` is the process's identity (Settings.tls); None — only with METROFED_INSECURE=1 — listens in
    plaintext."""

    def __init__(self, listen: str, register: Iterable[Callable[[grpc.Server], None]],
                 service_names: Iterable[str], *, tls: TLSFiles | None, auth: grpc.ServerInterceptor | None,
                 workers: int = 16):
        # auth and tls are required (secure by default); None only with METROFED_INSECURE=1 (benchmarks)
        interceptors: list[grpc.ServerInterceptor] = [server_interceptor(), ErrorInterceptor()]
        if auth is not None:
            interceptors.insert(1, auth)
        self.grpc = grpc.server(
            futures.ThreadPoolExecutor(max_workers=workers, thread_name_prefix="grpc"),
            interceptors=interceptors,
            options=[("grpc.max_receive_message_length", MAX_MESSAGE_BYTES),
                     ("grpc.so_reuseport", 0)],
        )
        for add in register:
            add(self.grpc)
        self.health = health.HealthServicer()
        health_pb2_grpc.add_HealthServicer_to_server(self.health, self.grpc)
        self._names = list(service_names)
        reflection.enable_server_reflection([*self._names, health.SERVICE_NAME, reflection.SERVICE_NAME],
                                            self.grpc)
        self.tls = tls is not None
        self.port = (self.grpc.add_secure_port(listen, server_credentials(tls)) if tls is not None
                     else self.grpc.add_insecure_port(listen))
        if self.port == 0:
            raise RuntimeError(f"cannot listen on {listen}")
        self.set_serving(False)

    def set_serving(self, serving: bool) -> None:
        status = health_pb2.HealthCheckResponse.SERVING if serving else health_pb2.HealthCheckResponse.NOT_SERVING
        for name in ["", *self._names]:
            self.health.set(name, status)

    def start(self) -> None:
        self.grpc.start()

    def stop(self, grace: float = 5.0) -> None:
        self.set_serving(False)
        self.grpc.stop(grace).wait()


def wait_for_termination_signal() -> None:
    """Blocks the main thread until SIGTERM or SIGINT."""
    stop = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop.set())
    stop.wait()
