"""How every metrofed Kafka client authenticates to the broker: mutual TLS with the party's certificate.

The one place that turns a TLS identity into kafka-python connection settings; producers, consumers and
admin clients all take a ``KafkaSecurity`` and spread ``client_kwargs()`` into their constructor. The
broker maps the certificate's CN to the principal (``User:centre-hz-oil-gas``) and authorises it by ACL
(metrofed/bus/acls.py).
"""

from __future__ import annotations

from dataclasses import dataclass

from metrofed.config import TLSFiles


@dataclass(frozen=True)
class KafkaSecurity:
    ca: str = ""
    cert: str = ""
    key: str = ""

    @classmethod
    def from_tls(cls, tls) -> "KafkaSecurity":
        """From a TLSFiles or a metrofed.pki.PartyTLS; None (METROFED_INSECURE=1) is PLAINTEXT."""
        if tls is None:
            return cls.plaintext()
        return cls(str(tls.ca), str(tls.cert), str(tls.key))

    @classmethod
    def from_env(cls) -> "KafkaSecurity":
        from metrofed.config import load_tls

        return cls.from_tls(load_tls())

    @classmethod
    def plaintext(cls) -> "KafkaSecurity":
        return cls()

    @property
    def tls(self) -> bool:
        return bool(self.cert)

    def as_tls_files(self) -> TLSFiles | None:
        return TLSFiles(self.ca, self.cert, self.key) if self.tls else None

    def client_kwargs(self) -> dict:
        if not self.tls:
            return {"security_protocol": "PLAINTEXT"}
        return {"security_protocol": "SSL", "ssl_cafile": self.ca, "ssl_certfile": self.cert,
                "ssl_keyfile": self.key, "ssl_check_hostname": True}


__all__ = ["KafkaSecurity"]
