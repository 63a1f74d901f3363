"""Authentication and authorization of every gRPC call, as a server interceptor.

The caller's credential (``authorization: Bearer <JWT>``) is verified against the trust store; its role
must be one ``policy.POLICY`` allows for the method; on a centre's own service a caller with the centre
role must be *that* centre. The verified ``Principal`` is then available to the servicer through
``caller()`` — servicers never take identity from a request field. Refusals are UNAUTHENTICATED (no or bad
credential) or PERMISSION_DENIED (wrong role or party), logged with the reason and counted per code so an
operator can see them.
"""

from __future__ import annotations

import collections
import contextvars
import logging
import threading

import grpc
from opentelemetry import trace

from metrofed.domain.access import Principal, Role
from metrofed.trust.credentials import BadCredential, TokenVerifier
from metrofed.trust.policy import OPEN_PREFIXES, POLICY

log = logging.getLogger(__name__)
_CALLER: contextvars.ContextVar[Principal | None] = contextvars.ContextVar("metrofed_caller", default=None)


_anonymous_ok = False


def allow_anonymous_callers() -> None:
    """METROFED_INSECURE (benchmarks of the bare path): servers run without the interceptor and
    ``caller()`` answers None, which the tenant rules read as "whatever the request says"."""
    global _anonymous_ok
    _anonymous_ok = True


def caller() -> Principal | None:
    """The authenticated caller of the RPC being served (set by ``AuthInterceptor``)."""
    principal = _CALLER.get()
    if principal is None and not _anonymous_ok:
        raise RuntimeError("no authenticated caller: is the AuthInterceptor installed?")
    return principal


def _bearer(metadata) -> str:
    for key, value in metadata or ():
        if key == "authorization":
            if isinstance(value, bytes):
                value = value.decode("latin-1")
            return value[7:].strip() if value[:7].lower() == "bearer " else ""
    return ""


class AuthInterceptor(grpc.ServerInterceptor):
    def __init__(self, verifier: TokenVerifier, *, centre_id: str | None = None,
                 policy: dict[str, frozenset[Role]] = POLICY):
        self._verifier = verifier
        self._centre_id = centre_id  # set on a centre's service: role centre must be this centre
        self._policy = policy
        self._lock = threading.Lock()
        self.refused: collections.Counter[str] = collections.Counter()

    def _refuse(self, method: str, code: grpc.StatusCode, why: str, who: str = "anonymous"):
        with self._lock:
            self.refused[code.name] += 1
        log.warning("refused %s for %s: %s: %s", method, who, code.name, why)
        span = trace.get_current_span()
        span.set_attribute("metrofed.auth.refused", f"{code.name}: {why}")

        def deny(_request, context):
            context.abort(code, why)

        return grpc.unary_unary_rpc_method_handler(deny)

    def intercept_service(self, continuation, handler_call_details):
        method = handler_call_details.method
        if method.startswith(OPEN_PREFIXES):
            return continuation(handler_call_details)
        allowed = self._policy.get(method)
        if allowed is None:
            return self._refuse(method, grpc.StatusCode.PERMISSION_DENIED, "no access policy for this method")
        try:
            principal = self._verifier.verify(_bearer(handler_call_details.invocation_metadata))
        except BadCredential as exc:
            return self._refuse(method, grpc.StatusCode.UNAUTHENTICATED, str(exc))
        if principal.role not in allowed:
            return self._refuse(method, grpc.StatusCode.PERMISSION_DENIED,
                                f"role {principal.role.value} may not call {method.rsplit('/', 1)[-1]}", str(principal))
        if (self._centre_id is not None and principal.role is Role.CENTRE
                and principal.subject != self._centre_id):
            return self._refuse(method, grpc.StatusCode.PERMISSION_DENIED,
                                f"this is centre {self._centre_id}'s service", str(principal))
        handler = continuation(handler_call_details)
        if handler is None or handler.unary_unary is None:
            return handler
        inner = handler.unary_unary

        def as_caller(request, context):
            trace.get_current_span().set_attribute("metrofed.caller", str(principal))
            token = _CALLER.set(principal)
            try:
                return inner(request, context)
            finally:
                _CALLER.reset(token)

        return grpc.unary_unary_rpc_method_handler(
            as_caller, request_deserializer=handler.request_deserializer,
            response_serializer=handler.response_serializer)
