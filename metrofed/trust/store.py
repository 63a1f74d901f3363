"""The trust anchor: one JSON document the operator's CLI writes and every process reads.

It holds public material only — the credential issuer's public key, every enrolled party's event-signing
public keys with their status, and the revoked credentials — so it can be shipped to every host as a
config file (a ConfigMap in ``infra/k8s``). A process re-reads it when the file changes, so an enrolment,
a rotation or a revocation reaches running services without a restart.

Key status: ``active`` signs new events; ``retired`` (after a rotation) no longer signs but what it signed
stays valid — the compacted catalog topics keep old records for ever; ``revoked`` (compromise) makes every
signature by the key invalid, old ones included: the party must re-publish (``docs/security.md``).
"""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import json
import os
import threading
import time
from dataclasses import dataclass
from pathlib import Path

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

FORMAT = 1
ACTIVE, RETIRED, REVOKED = "active", "retired", "revoked"


def key_id(public: Ed25519PublicKey) -> str:
    """A key's id: the first 16 hex digits of the SHA-256 of its raw bytes (stable, no registry needed)."""
    return hashlib.sha256(raw_public(public)).hexdigest()[:16]


def raw_public(public: Ed25519PublicKey) -> bytes:
    return public.public_bytes(Encoding.Raw, PublicFormat.Raw)


@dataclass(frozen=True)
class PartyKey:
    party: str  # "gateway", "centre-<id>"
    kid: str
    public: Ed25519PublicKey
    status: str


def empty_document(issuer_public: Ed25519PublicKey) -> dict:
    return {"format": FORMAT, "issuer": {"kid": key_id(issuer_public),
                                         "public": base64.b64encode(raw_public(issuer_public)).decode()},
            "parties": {}, "revoked_tokens": {}, "revoked_subjects": {}}


class TrustStore:
    """Read side of the trust document, re-read when the file changes (checked at most once a second)."""

    def __init__(self, path: Path | str, *, recheck_seconds: float = 1.0):
        self.path = Path(path)
        self._recheck = recheck_seconds
        self._lock = threading.Lock()
        self._checked = 0.0
        self._stamp: tuple[int, int] | None = None
        self._load()

    # ---- reading -----------------------------------------------------------------------------------

    def _load(self) -> None:
        try:
            st = self.path.stat()
            doc = json.loads(self.path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            raise RuntimeError(f"trust document {self.path} does not exist: run `metrofed trust init`") from None
        if doc.get("format") != FORMAT:
            raise RuntimeError(f"trust document {self.path}: unknown format {doc.get('format')!r}")
        issuer = Ed25519PublicKey.from_public_bytes(base64.b64decode(doc["issuer"]["public"]))
        keys: dict[str, PartyKey] = {}
        for party, entry in doc["parties"].items():
            for k in entry["keys"]:
                keys[k["kid"]] = PartyKey(party, k["kid"],
                                          Ed25519PublicKey.from_public_bytes(base64.b64decode(k["public"])),
                                          k["status"])
        self._doc = doc
        self._issuer = issuer
        self._issuer_kid = doc["issuer"]["kid"]
        self._keys = keys
        self._revoked_tokens = frozenset(doc["revoked_tokens"])
        self._revoked_subjects = {s: dt.datetime.fromisoformat(t) for s, t in doc["revoked_subjects"].items()}
        self._stamp = (st.st_mtime_ns, st.st_size)
        self.generation = getattr(self, "generation", 0) + 1

    def refresh(self, force: bool = False) -> None:
        now = time.monotonic()
        if not force and now - self._checked < self._recheck:
            return
        with self._lock:
            self._checked = now
            try:
                st = self.path.stat()
            except FileNotFoundError:
                return  # keep what we have: a missing file is an operator mistake, not a reason to trust less
            if force or (st.st_mtime_ns, st.st_size) != self._stamp:
                self._load()

    @property
    def issuer(self) -> Ed25519PublicKey:
        self.refresh()
        return self._issuer

    @property
    def issuer_kid(self) -> str:
        return self._issuer_kid

    def key(self, kid: str) -> PartyKey | None:
        self.refresh()
        return self._keys.get(kid)

    def parties(self) -> dict[str, dict]:
        self.refresh()
        return self._doc["parties"]

    def is_enrolled(self, party: str) -> bool:
        return any(k.status != REVOKED for k in self._party_keys(party))

    def _party_keys(self, party: str) -> list[PartyKey]:
        self.refresh()
        return [k for k in self._keys.values() if k.party == party]

    def token_revoked(self, token_id: str, subject: str, issued_at: dt.datetime) -> bool:
        self.refresh()
        if token_id in self._revoked_tokens:
            return True
        cutoff = self._revoked_subjects.get(subject)
        return cutoff is not None and issued_at <= cutoff


# ---- writing (the operator's CLI; see home.py) ---------------------------------------------------------

def write_document(path: Path, doc: dict) -> None:
    """Atomically: readers see the old document or the new one, never half of one."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_text(json.dumps(doc, indent=1, sort_keys=True) + "\n", encoding="utf-8")
    os.replace(tmp, path)
