"""Application errors that the gRPC edge maps to status codes (see metrofed.grpc_server)."""

from __future__ import annotations

from metrofed.domain.limits import quote


class NotFound(LookupError):
    def __init__(self, what: str, ident: str):
        super().__init__(f"{what} {quote(ident)} not found")


class Conflict(RuntimeError):
    """The request is well-formed but the current state forbids it (FAILED_PRECONDITION)."""


class Unavailable(RuntimeError):
    """Not ready yet, e.g. the catalog is still catching up for the first time (UNAVAILABLE)."""
