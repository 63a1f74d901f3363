"""Who may do what: the four roles of the federation and the tenant rules, as pure functions.

A caller's identity comes from its credential (verified by an adapter, ``metrofed/trust/``), never from a
field of the request body. The rules here decide, given that identity, what a caller may see or change:
an enterprise its own requests, a centre its own inbox, profile and capabilities, an operator what runs
the platform, a regulator read-only figures. Nobody acts or speaks for another party.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass


class Role(str, enum.Enum):
    ENTERPRISE = "enterprise"  # an SME: submits and follows its own requests
    CENTRE = "centre"  # the staff of one metrology centre: its profile, capabilities and inbox
    OPERATOR = "operator"  # platform staff: enrol centres, watch the federation, re-drive dead letters
    REGULATOR = "regulator"  # market-supervision bureaus: read-only statistics and the catalog


class Forbidden(Exception):
    """The caller is known but may not do this (gRPC PERMISSION_DENIED)."""


@dataclass(frozen=True)
class Principal:
    role: Role
    subject: str  # the enterprise id, centre id, operator or regulator name the credential was issued to
    token_id: str = ""  # the credential's id (JWT ``jti``): what revocation names

    def __str__(self) -> str:
        return f"{self.role.value}:{self.subject}"


def owns_request(caller: Principal | None, owner_enterprise_id: str) -> bool:
    """May ``caller`` see (and, for an enterprise, cancel) a request of ``owner_enterprise_id``? Operators see
    every request to run the platform; anyone else who is not the owner must not even learn it exists.
    ``None``: an unauthenticated benchmark run (METROFED_INSECURE), where nothing is checked."""
    if caller is None or caller.role is Role.OPERATOR:
        return True
    return caller.role is Role.ENTERPRISE and caller.subject == owner_enterprise_id


def acting_enterprise(caller: Principal | None, claimed: str) -> str:
    """The enterprise a submit or list acts for: the caller's own id. A body that names another enterprise
    is refused (``Forbidden``), not silently overridden, so a client bug is seen at once. (``None``: a
    benchmark run without credentials, METROFED_INSECURE: the body's word is taken.)"""
    if caller is None:
        return claimed
    if caller.role is not Role.ENTERPRISE:
        raise Forbidden(f"{caller} is not an enterprise")
    if claimed and claimed != caller.subject:
        raise Forbidden(f"enterprise_id: {caller} may not act for enterprise {claimed[:40]!r}")
    return caller.subject


def is_centre_itself(caller: Principal, centre_id: str) -> bool:
    return caller.role is Role.CENTRE and caller.subject == centre_id
