"""The operator's side of the trust model: a federation's home directory and what changes it.

    <home>/trust/trust.json            public: issuer key, parties' signing keys, revocations (ship it everywhere)
    <home>/operator/issuer.key         private: signs credentials (stays with the operator)
    <home>/parties/<party>/signing.key private: a party's event-signing key (stays on that party's host)
                                       (parties: "gateway", "centre-<id>"; kinds "gateway", "centre")
    <home>/credentials/<role>-<subject>.jwt   credentials issued to callers

On a development machine one home holds everything (``make run``, the tests). In a real deployment each
party generates its own signing key and hands the operator only the public half (``enrol --public-key``);
docs/security.md lists what else a deployment must add.
"""

from __future__ import annotations

import base64
import copy
import datetime as dt
import fcntl
import os
from contextlib import contextmanager
from pathlib import Path

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from cryptography.hazmat.primitives.serialization import (Encoding, NoEncryption, PrivateFormat, PublicFormat,
                                                          load_pem_private_key, load_pem_public_key)

from metrofed.domain.access import Role
from metrofed.trust.credentials import issue_token
from metrofed.trust.store import ACTIVE, RETIRED, REVOKED, TrustStore, empty_document, key_id, raw_public, \
    write_document

DEFAULT_TTL = {Role.ENTERPRISE: dt.timedelta(days=365), Role.CENTRE: dt.timedelta(days=90),
               Role.OPERATOR: dt.timedelta(days=30), Role.REGULATOR: dt.timedelta(days=365)}


def _write_private(path: Path, key: Ed25519PrivateKey) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as f:
        f.write(key.private_bytes(Encoding.PEM, PrivateFormat.PKCS8, NoEncryption()))


def _load_private(path: Path) -> Ed25519PrivateKey:
    key = load_pem_private_key(path.read_bytes(), password=None)
    if not isinstance(key, Ed25519PrivateKey):
        raise RuntimeError(f"{path}: not an Ed25519 private key")
    return key


class FederationHome:
    def __init__(self, root: Path | str):
        self.root = Path(root)

    @property
    def trust_file(self) -> Path:
        return self.root / "trust" / "trust.json"

    @property
    def issuer_key_file(self) -> Path:
        return self.root / "operator" / "issuer.key"

    def signing_key_file(self, party: str) -> Path:
        return self.root / "parties" / party / "signing.key"

    def credential_file(self, role: Role, subject: str) -> Path:
        return self.root / "credentials" / f"{role.value}-{subject}.jwt"

    # ---- the document, under a lock (several CLIs or test workers may enrol at once) -------------------

    @contextmanager
    def _editing(self):
        self.trust_file.parent.mkdir(parents=True, exist_ok=True)
        with open(self.trust_file.parent / ".lock", "w") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            doc = TrustStore(self.trust_file)._doc
            new = copy.deepcopy(doc)
            yield new
            if new != doc:
                write_document(self.trust_file, new)

    def init(self) -> bool:
        """Creates the issuer key and an empty trust document; False when they exist already."""
        if self.trust_file.exists() and self.issuer_key_file.exists():
            return False
        key = Ed25519PrivateKey.generate()
        _write_private(self.issuer_key_file, key)
        write_document(self.trust_file, empty_document(key.public_key()))
        return True

    def store(self) -> TrustStore:
        return TrustStore(self.trust_file)

    # ---- parties and their signing keys --------------------------------------------------------------

    def enrol(self, party: str, kind: str, public_key: Ed25519PublicKey | None = None) -> str:
        """Registers ``party``'s signing key (generated here unless the party sent its public key) and
        returns its key id. Enrolling again with a key already active is a no-op."""
        if public_key is None:
            path = self.signing_key_file(party)
            if path.exists():
                public_key = _load_private(path).public_key()
            else:
                private = Ed25519PrivateKey.generate()
                _write_private(path, private)
                public_key = private.public_key()
        kid = key_id(public_key)
        with self._editing() as doc:
            entry = doc["parties"].setdefault(party, {"kind": kind, "keys": []})
            if entry["kind"] != kind:
                raise ValueError(f"{party} is enrolled as a {entry['kind']}, not a {kind}")
            if not any(k["kid"] == kid for k in entry["keys"]):
                entry["keys"].append({"kid": kid, "status": ACTIVE, "since": _now(),
                                      "public": base64.b64encode(raw_public(public_key)).decode()})
        return kid

    def rotate(self, party: str) -> str:
        """A new active key for ``party``; its previous keys become retired (their signatures stay valid)."""
        with self._editing() as doc:
            if party not in doc["parties"]:
                raise KeyError(f"{party} is not enrolled")
            kind = doc["parties"][party]["kind"]
        private = Ed25519PrivateKey.generate()
        path = self.signing_key_file(party)
        if path.exists():
            path.rename(path.with_name(f"signing.{key_id(_load_private(path).public_key())}.key"))
        _write_private(path, private)
        kid = self.enrol(party, kind, private.public_key())
        with self._editing() as doc:
            for k in doc["parties"][party]["keys"]:
                if k["kid"] != kid and k["status"] == ACTIVE:
                    k["status"], k["retired"] = RETIRED, _now()
        return kid

    def revoke_key(self, kid: str) -> str:
        """Marks a key compromised: every signature by it is rejected from now on. Returns its party."""
        with self._editing() as doc:
            for party, entry in doc["parties"].items():
                for k in entry["keys"]:
                    if k["kid"] == kid:
                        k["status"], k["revoked"] = REVOKED, _now()
                        return party
        raise KeyError(f"no key {kid!r} in {self.trust_file}")

    def revoke_party(self, party: str) -> list[str]:
        """Revokes every key of ``party`` and every credential issued to it so far."""
        with self._editing() as doc:
            entry = doc["parties"].get(party)
            if entry is None:
                raise KeyError(f"{party} is not enrolled")
            for k in entry["keys"]:
                if k["status"] != REVOKED:
                    k["status"], k["revoked"] = REVOKED, _now()
            kids = [k["kid"] for k in entry["keys"]]
        if entry["kind"] == "centre":  # its staff's credentials go with it
            self.revoke_subject(Role.CENTRE, party.removeprefix("centre-"))
        return kids

    # ---- credentials -----------------------------------------------------------------------------------

    def issue(self, role: Role, subject: str, ttl: dt.timedelta | None = None, *, write: bool = True) -> str:
        if not subject or len(subject) > 200 or any(c in subject for c in "/\\\x00") or subject.startswith("."):
            raise ValueError(f"subject {subject[:40]!r}: 1–200 characters, no '/', '\\', NUL or leading '.'")
        token = issue_token(_load_private(self.issuer_key_file), role, subject, ttl=ttl or DEFAULT_TTL[role])
        if write:
            path = self.credential_file(role, subject)
            path.parent.mkdir(parents=True, exist_ok=True)
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
            with os.fdopen(fd, "w") as f:
                f.write(token + "\n")
        return token

    def credential(self, role: Role, subject: str) -> str:
        """The credential issued to (role, subject), issuing one when there is none yet."""
        path = self.credential_file(role, subject)
        if path.exists():
            return path.read_text().strip()
        return self.issue(role, subject)

    def revoke_token(self, token_id: str) -> None:
        with self._editing() as doc:
            doc["revoked_tokens"][token_id] = _now()

    def revoke_subject(self, role: Role, subject: str) -> None:
        """Every credential issued to (role, subject) up to now stops working; a new one can be issued."""
        with self._editing() as doc:
            doc["revoked_subjects"][f"{role.value}:{subject}"] = _now()


def _now() -> str:
    return dt.datetime.now(dt.timezone.utc).isoformat(timespec="microseconds")


def load_public_key(path: Path | str) -> Ed25519PublicKey:
    key = load_pem_public_key(Path(path).read_bytes())
    if not isinstance(key, Ed25519PublicKey):
        raise RuntimeError(f"{path}: not an Ed25519 public key")
    return key
