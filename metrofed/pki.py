"""The federation's development PKI: one CA and one TLS identity per party, kept under the federation's home.

    <home>/pki/ca.pem, ca.key                      the development CA (ECDSA P-256, self-signed)
    <home>/pki/parties/<party>/tls.pem, tls.key    the party's certificate (CN = party) and its key

A party is ``broker``, ``admin`` (operator tooling, Kafka super user), ``gateway`` or ``centre-<id>``. One
certificate serves both directions: the party's gRPC server (serverAuth) and its Kafka client (clientAuth).
Keys are unencrypted PKCS#8 files with mode 0600: a development federation runs as one OS user on one
machine, where a passphrase would sit next to the key anyway. Production does otherwise (docs/transport-security.md):
a real CA, keys generated on the host that uses them and never copied.

Issuing is idempotent: a party's existing certificate is reused while it is signed by this CA, names
the hosts asked for and has more than ``RENEW_BEFORE`` left; otherwise a new key and certificate replace it.
"""

from __future__ import annotations

import datetime as dt
import fcntl
import ipaddress
import os
import re
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

CA_VALIDITY = dt.timedelta(days=3650)
PARTY_VALIDITY = dt.timedelta(days=397)
RENEW_BEFORE = dt.timedelta(days=30)
DEFAULT_HOSTS = ("127.0.0.1", "localhost")
ORGANISATION = "metrofed development federation"
_PARTY = re.compile(r"^[a-z0-9][a-z0-9-]{0,62}$")


@dataclass(frozen=True)
class PartyTLS:
    """Paths of one party's TLS material."""

    ca: Path
    cert: Path
    key: Path

    def env(self) -> dict[str, str]:
        """The variables a metrofed process reads its TLS identity from (metrofed/config.py)."""
        return {"METROFED_TLS_CA": str(self.ca), "METROFED_TLS_CERT": str(self.cert),
                "METROFED_TLS_KEY": str(self.key)}


def _now() -> dt.datetime:
    return dt.datetime.now(dt.timezone.utc)


def _write_private(path: Path, data: bytes) -> None:
    # Created 0600 from the start (never readable by others, not even between write and chmod).
    tmp = path.with_name(path.name + ".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as f:
        f.write(data)
    os.replace(tmp, path)


def _write_public(path: Path, data: bytes) -> None:
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_bytes(data)
    os.replace(tmp, path)


def _key_pem(key: ec.EllipticCurvePrivateKey) -> bytes:
    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                             serialization.NoEncryption())


def _san(hosts) -> list[x509.GeneralName]:
    names: list[x509.GeneralName] = []
    for h in dict.fromkeys(hosts):
        try:
            names.append(x509.IPAddress(ipaddress.ip_address(h)))
        except ValueError:
            names.append(x509.DNSName(h))
    return names


class DevCA:
    def __init__(self, home: Path | str):
        self.home = Path(home).resolve()
        self.dir = self.home / "pki"
        self.ca_cert_path = self.dir / "ca.pem"
        self.ca_key_path = self.dir / "ca.key"

    @contextmanager
    def _locked(self):
        # Tests and `make run` may issue from several processes at once: one writer at a time.
        self.dir.mkdir(parents=True, exist_ok=True, mode=0o700)
        with open(self.dir / ".lock", "w") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(lock, fcntl.LOCK_UN)

    def ensure(self) -> "DevCA":
        """Creates the CA when there is none (or it is about to expire); returns self."""
        with self._locked():
            self._ensure_ca()
        return self

    def _ensure_ca(self) -> tuple[x509.Certificate, ec.EllipticCurvePrivateKey]:
        if self.ca_cert_path.is_file() and self.ca_key_path.is_file():
            cert = x509.load_pem_x509_certificate(self.ca_cert_path.read_bytes())
            if cert.not_valid_after_utc - _now() > RENEW_BEFORE:
                key = serialization.load_pem_private_key(self.ca_key_path.read_bytes(), None)
                return cert, key
        key = ec.generate_private_key(ec.SECP256R1())
        name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "metrofed development CA"),
                          x509.NameAttribute(NameOID.ORGANIZATION_NAME, ORGANISATION)])
        now = _now()
        cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
                .serial_number(x509.random_serial_number())
                .not_valid_before(now - dt.timedelta(minutes=5)).not_valid_after(now + CA_VALIDITY)
                .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
                .add_extension(x509.KeyUsage(digital_signature=False, content_commitment=False,
                                             key_encipherment=False, data_encipherment=False, key_agreement=False,
                                             key_cert_sign=True, crl_sign=True, encipher_only=False,
                                             decipher_only=False), critical=True)
                .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
                .sign(key, hashes.SHA256()))
        _write_private(self.ca_key_path, _key_pem(key))
        _write_public(self.ca_cert_path, cert.public_bytes(serialization.Encoding.PEM))
        return cert, key

    def party_dir(self, party: str) -> Path:
        return self.dir / "parties" / party

    def paths(self, party: str) -> PartyTLS:
        d = self.party_dir(party)
        return PartyTLS(self.ca_cert_path, d / "tls.pem", d / "tls.key")

    def issue(self, party: str, hosts=()) -> PartyTLS:
        """The party's TLS identity, issued now unless a valid one for these hosts exists already."""
        if not _PARTY.match(party):
            raise ValueError(f"party name {party!r}: lowercase letters, digits and '-' only (it is the CN "
                             "and the Kafka principal)")
        want = [*DEFAULT_HOSTS, *hosts]
        out = self.paths(party)
        with self._locked():
            ca_cert, ca_key = self._ensure_ca()
            if self._reusable(out, ca_cert, party, want):
                return out
            out.cert.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
            key = ec.generate_private_key(ec.SECP256R1())
            now = _now()
            cert = (x509.CertificateBuilder()
                    # CN only: the broker's principal mapping takes the whole subject "CN=<party>"
                    .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, party)]))
                    .issuer_name(ca_cert.subject).public_key(key.public_key())
                    .serial_number(x509.random_serial_number())
                    .not_valid_before(now - dt.timedelta(minutes=5))
                    .not_valid_after(min(now + PARTY_VALIDITY, ca_cert.not_valid_after_utc))
                    .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
                    .add_extension(x509.KeyUsage(digital_signature=True, content_commitment=False,
                                                 key_encipherment=False, data_encipherment=False,
                                                 key_agreement=False, key_cert_sign=False, crl_sign=False,
                                                 encipher_only=False, decipher_only=False), critical=True)
                    .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH,
                                                          ExtendedKeyUsageOID.CLIENT_AUTH]), critical=False)
                    .add_extension(x509.SubjectAlternativeName(_san(want)), critical=False)
                    .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()),
                                   critical=False)
                    .sign(ca_key, hashes.SHA256()))
            _write_private(out.key, _key_pem(key))
            _write_public(out.cert, cert.public_bytes(serialization.Encoding.PEM))
        return out

    @staticmethod
    def _reusable(out: PartyTLS, ca_cert: x509.Certificate, party: str, hosts: list[str]) -> bool:
        if not (out.cert.is_file() and out.key.is_file()):
            return False
        try:
            cert = x509.load_pem_x509_certificate(out.cert.read_bytes())
            cert.verify_directly_issued_by(ca_cert)
            key = serialization.load_pem_private_key(out.key.read_bytes(), None)
        except (ValueError, TypeError, InvalidSignature):
            return False
        if key.public_key() != cert.public_key():
            return False
        if cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value != party:
            return False
        if cert.not_valid_after_utc - _now() <= RENEW_BEFORE:
            return False
        have = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
        return all(n in have for n in _san(hosts))


__all__ = ["DevCA", "PartyTLS"]
