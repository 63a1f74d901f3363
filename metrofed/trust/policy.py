"""Which roles may call which RPC. Every RPC of both services is listed; a method missing here is refused
(fail closed), so a new RPC cannot ship without a decision. Tenant rules (whose request, which centre)
are applied on top by the servicers with ``metrofed.domain.access``.
"""

from __future__ import annotations

from metrofed.domain.access import Role

E, C, O, R = Role.ENTERPRISE, Role.CENTRE, Role.OPERATOR, Role.REGULATOR
ANYONE = frozenset(Role)

GATEWAY = "/metrofed.v1.GatewayService/"
CENTRE = "/metrofed.v1.CentreService/"

POLICY: dict[str, frozenset[Role]] = {
    # the catalog is the federation's shop window: every enrolled caller may search it and ask the router
    GATEWAY + "SearchCatalog": ANYONE,
    GATEWAY + "RouteNeed": ANYONE,
    # requests are the enterprise's own; operators see all of them (to run the platform) but submit and
    # cancel for nobody
    GATEWAY + "SubmitRequest": frozenset({E}),
    GATEWAY + "GetRequest": frozenset({E, O}),
    GATEWAY + "ListRequests": frozenset({E, O}),
    GATEWAY + "CancelRequest": frozenset({E}),
    # a centre's service: its own staff (role centre, subject = that centre: checked by the interceptor)
    CENTRE + "GetProfile": ANYONE,
    CENTRE + "RegisterCentre": frozenset({O}),
    CENTRE + "PublishCapability": frozenset({C}),
    CENTRE + "ReviseCapability": frozenset({C}),
    CENTRE + "WithdrawCapability": frozenset({C}),
    CENTRE + "ListCapabilities": frozenset({C, O}),
    CENTRE + "ListInbox": frozenset({C, O}),
    CENTRE + "AcceptRequest": frozenset({C}),
    CENTRE + "DeclineRequest": frozenset({C}),
    CENTRE + "CompleteRequest": frozenset({C}),
    # the certificate belongs to the enterprise that asked for it (checked against the inbox row)
    CENTRE + "GetCertificate": frozenset({E, C, O}),
}

# Standard furniture every client and probe may use without a credential.
OPEN_PREFIXES = ("/grpc.health.v1.Health/", "/grpc.reflection.")


def markdown_table() -> str:
    """The policy as docs/security.md shows it (a test keeps the doc equal to this)."""
    head = "| RPC | " + " | ".join(r.value for r in Role) + " |\n|---|" + "---|" * len(Role) + "\n"
    rows = []
    for method, roles in POLICY.items():
        service, name = method.strip("/").split("/")
        rows.append(f"| `{service.rsplit('.', 1)[-1]}.{name}` | "
                    + " | ".join("yes" if r in roles else "—" for r in Role) + " |")
    return head + "\n".join(rows) + "\n"
