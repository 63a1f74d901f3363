"""Thin client helpers: channels with OpenTelemetry client spans, and a default deadline on every call
(gRPC Python does not propagate deadlines by itself)."""

from __future__ import annotations

import grpc
from opentelemetry.instrumentation.grpc import client_interceptor
from opentelemetry.instrumentation.grpc.grpcext import intercept_channel

from metrofed.v1 import centre_service_pb2_grpc, gateway_service_pb2_grpc

DEFAULT_TIMEOUT = 10.0


def channel(endpoint: str) -> grpc.Channel:
    return intercept_channel(grpc.insecure_channel(endpoint), client_interceptor())


def gateway(endpoint: str) -> gateway_service_pb2_grpc.GatewayServiceStub:
    return gateway_service_pb2_grpc.GatewayServiceStub(channel(endpoint))


def centre(endpoint: str) -> centre_service_pb2_grpc.CentreServiceStub:
    return centre_service_pb2_grpc.CentreServiceStub(channel(endpoint))
