"""Caller credentials: JSON Web Tokens signed with the federation issuer's Ed25519 key (``EdDSA``).

Why JWTs and not client certificates for callers: the callers are thousands of enterprises on web pages
and mini-programs as well as centre staff and operators; a bearer token is what those clients can hold and
send, it names a role and a subject the servers can read without a directory lookup, and a token is
revoked by its id (``jti``) in the trust document. Services authenticate to each other and to the broker
with TLS certificates instead (docs/transport-security.md).

Claims: ``iss``/``aud`` = ``metrofed``, ``sub`` (who), ``role`` (one of ``access.Role``), ``jti``, ``iat``,
``exp``. Verification is PyJWT's, pinned to ``EdDSA`` (no ``none``, no HMAC confusion with a public key).
A verified token is remembered briefly (verification costs ~0.1–0.2 ms here); expiry and revocation are
still checked on every call.
"""

from __future__ import annotations

import datetime as dt
import threading
import uuid

import jwt
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from metrofed.domain.access import Principal, Role
from metrofed.trust.store import TrustStore, key_id

ISSUER = AUDIENCE = "metrofed"
ALGORITHM = "EdDSA"
MAX_TOKEN_CHARS = 4096


class BadCredential(Exception):
    """The caller is not authenticated: the message says why (never echoing the token)."""


def issue_token(issuer_key: Ed25519PrivateKey, role: Role, subject: str, *, ttl: dt.timedelta,
                now: dt.datetime | None = None, token_id: str | None = None) -> str:
    now = now or dt.datetime.now(dt.timezone.utc)
    claims = {"iss": ISSUER, "aud": AUDIENCE, "sub": subject, "role": role.value,
              "jti": token_id or str(uuid.uuid4()), "iat": int(now.timestamp()),
              # microseconds too: "revoke everything issued to X so far" must not catch a token issued a
              # moment later in the same second
              "iat_us": int(now.timestamp() * 1_000_000),
              "exp": int((now + ttl).timestamp())}
    return jwt.encode(claims, issuer_key, algorithm=ALGORITHM, headers={"kid": key_id(issuer_key.public_key())})


class TokenVerifier:
    def __init__(self, store: TrustStore, *, cache_size: int = 10_000):
        self._store = store
        self._cache: dict[str, tuple[Principal, int, dt.datetime, int]] = {}
        self._cache_size = cache_size
        self._lock = threading.Lock()

    def verify(self, token: str, now: dt.datetime | None = None) -> Principal:
        if not token:
            raise BadCredential("no credential: send 'authorization: Bearer <token>'")
        if len(token) > MAX_TOKEN_CHARS:
            raise BadCredential(f"credential longer than {MAX_TOKEN_CHARS} characters")
        now = now or dt.datetime.now(dt.timezone.utc)
        self._store.refresh()
        hit = self._cache.get(token)
        if hit is not None and hit[3] == self._store.generation:
            principal, exp, issued, _ = hit
        else:
            principal, exp, issued = self._decode(token)
            with self._lock:
                if len(self._cache) >= self._cache_size:
                    self._cache.clear()
                self._cache[token] = (principal, exp, issued, self._store.generation)
        if now.timestamp() >= exp:
            raise BadCredential("credential expired")
        if self._store.token_revoked(principal.token_id, f"{principal.role.value}:{principal.subject}", issued):
            raise BadCredential("credential revoked")
        return principal

    def _decode(self, token: str) -> tuple[Principal, int, dt.datetime]:
        try:
            claims = jwt.decode(token, self._store.issuer, algorithms=[ALGORITHM], audience=AUDIENCE,
                                issuer=ISSUER, options={"require": ["exp", "iat", "sub", "jti", "role"],
                                                        "verify_exp": False})  # expiry checked per call
        except jwt.PyJWTError as exc:
            raise BadCredential(f"credential not valid: {type(exc).__name__}: {str(exc)[:80]}") from None
        try:
            role = Role(claims["role"])
        except ValueError:
            raise BadCredential("credential names an unknown role") from None
        subject = claims["sub"]
        if not isinstance(subject, str) or not subject or len(subject) > 200:
            raise BadCredential("credential subject is not a short string")
        iat_us = claims.get("iat_us")
        issued = (dt.datetime.fromtimestamp(iat_us / 1_000_000, dt.timezone.utc) if isinstance(iat_us, int)
                  else dt.datetime.fromtimestamp(int(claims["iat"]), dt.timezone.utc))
        return Principal(role, subject, str(claims["jti"])), int(claims["exp"]), issued
