"""``metrofed trust|enrol|issue|rotate|revoke``: the operator's side of the trust model.

    metrofed trust init                      # issuer key + empty trust document in the home
    metrofed enrol centre hz-oil-gas         # signing key, trust entry, the centre staff's credential
    metrofed enrol gateway
    metrofed issue enterprise wuxi-sensor-works [--days 365]
    metrofed issue operator alice | regulator js-amr
    metrofed rotate centre-hz-oil-gas        # new signing key; the old one retired (its signatures stay valid)
    metrofed revoke key <kid> | token <jti> | party centre-hz-oil-gas | subject enterprise:acme
    metrofed trust show

The home is ``--home`` or ``METROFED_HOME`` (``make run`` uses ``var/demo/federation``).
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import sys

from metrofed.domain.access import Role
from metrofed.trust.home import FederationHome, load_public_key


def _home(args) -> FederationHome:
    root = args.home or os.environ.get("METROFED_HOME")
    if not root:
        sys.exit("metrofed: say where the federation's home is (--home DIR or METROFED_HOME)")
    return FederationHome(root)


def _needs_init(home: FederationHome) -> None:
    if not home.trust_file.exists():
        sys.exit(f"metrofed: no trust document in {home.root}: run `metrofed trust init` first")


def _init(args) -> int:
    home = _home(args)
    made = home.init()
    print(f"{'created' if made else 'exists'}: {home.trust_file} (issuer key {home.store().issuer_kid})")
    return 0


def _show(args) -> int:
    home = _home(args)
    _needs_init(home)
    doc = home.store()._doc
    print(f"trust document {home.trust_file}: issuer key {doc['issuer']['kid']}")
    rows = [(party, e["kind"], k["kid"], k["status"], k.get("since", ""))
            for party, e in sorted(doc["parties"].items()) for k in e["keys"]]
    _table(("party", "kind", "key id", "status", "since"), rows)
    if doc["revoked_tokens"] or doc["revoked_subjects"]:
        print()
        _table(("revoked credential", "at"), [*doc["revoked_tokens"].items(), *doc["revoked_subjects"].items()])
    return 0


def _enrol(args) -> int:
    home = _home(args)
    _needs_init(home)
    public = load_public_key(args.public_key) if args.public_key else None
    if args.kind == "gateway":
        kid = home.enrol("gateway", "gateway", public)
        print(f"enrolled gateway: signing key {kid}")
        return 0
    if not args.id:
        sys.exit("metrofed: enrol centre needs the centre's id")
    party = f"centre-{args.id}"
    kid = home.enrol(party, "centre", public)
    home.credential(Role.CENTRE, args.id)
    print(f"enrolled {party}: signing key {kid}; staff credential {home.credential_file(Role.CENTRE, args.id)}")
    return 0


def _issue(args) -> int:
    home = _home(args)
    _needs_init(home)
    ttl = dt.timedelta(days=args.days) if args.days else None
    try:
        token = home.issue(Role(args.role), args.subject, ttl)
    except ValueError as exc:
        sys.exit(f"metrofed: {exc}")
    print(f"{home.credential_file(Role(args.role), args.subject)}")
    if args.print:
        print(token)
    return 0


def _rotate(args) -> int:
    home = _home(args)
    _needs_init(home)
    kid = home.rotate(args.party)
    print(f"{args.party}: new signing key {kid} (restart it with {home.signing_key_file(args.party)}); "
          "earlier keys retired")
    return 0


def _revoke(args) -> int:
    home = _home(args)
    _needs_init(home)
    if args.what == "key":
        print(f"revoked key {args.value} of {home.revoke_key(args.value)}")
    elif args.what == "token":
        home.revoke_token(args.value)
        print(f"revoked credential {args.value}")
    elif args.what == "party":
        print(f"revoked {args.value}: keys {', '.join(home.revoke_party(args.value))} and its credentials")
    else:
        role, _, subject = args.value.partition(":")
        home.revoke_subject(Role(role), subject)
        print(f"revoked every credential issued to {args.value} so far")
    return 0


def _table(header, rows) -> None:
    rows = [tuple(str(c) for c in r) for r in rows]
    widths = [max(len(h), *(len(r[i]) for r in rows)) if rows else len(h) for i, h in enumerate(header)]
    print("  ".join(h.ljust(w) for h, w in zip(header, widths)))
    for r in rows:
        print("  ".join(c.ljust(w) for c, w in zip(r, widths)))


def register(sub) -> None:
    def parser(name, help_, func):
        p = sub.add_parser(name, help=help_)
        p.add_argument("--home", help="the federation's home directory (default: $METROFED_HOME)")
        p.set_defaults(func=func)
        return p

    trust = parser("trust", "the trust document", None)
    tsub = trust.add_subparsers(dest="cmd", required=True)
    for name, func, help_ in (("init", _init, "create the issuer key and the trust document"),
                              ("show", _show, "list parties, keys and revocations")):
        p = tsub.add_parser(name, help=help_)
        p.add_argument("--home", default=argparse.SUPPRESS)
        p.set_defaults(func=func)

    enrol = parser("enrol", "enrol a centre or the gateway (signing key + trust entry)", _enrol)
    enrol.add_argument("kind", choices=("centre", "gateway"))
    enrol.add_argument("id", nargs="?", help="the centre's id")
    enrol.add_argument("--public-key", help="the party's own Ed25519 public key (PEM) instead of making one here")

    issue = parser("issue", "issue a caller credential (JWT)", _issue)
    issue.add_argument("role", choices=[r.value for r in Role])
    issue.add_argument("subject", help="enterprise id, centre id, operator or regulator name")
    issue.add_argument("--days", type=float, help="validity (defaults per role: docs/security.md)")
    issue.add_argument("--print", action="store_true", help="also print the token")

    rotate = parser("rotate", "give a party a new signing key; the old ones are retired", _rotate)
    rotate.add_argument("party", help="gateway or centre-<id>")

    revoke = parser("revoke", "revoke a key, a credential, a party or everything issued to a subject", _revoke)
    revoke.add_argument("what", choices=("key", "token", "party", "subject"))
    revoke.add_argument("value", help="key id | token id (jti) | party | role:subject")
