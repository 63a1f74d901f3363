"""What a running service needs of the trust model, built once at start from its settings."""

from __future__ import annotations

from dataclasses import dataclass

from metrofed.config import ConfigError, Settings
from metrofed.trust.credentials import TokenVerifier
from metrofed.trust.signing import Signer, Verifier
from metrofed.trust.store import TrustStore


@dataclass(frozen=True)
class ServiceTrust:
    party: str  # "gateway" or "centre-<id>"
    store: TrustStore
    tokens: TokenVerifier  # callers' credentials
    events: Verifier  # other parties' event signatures
    signer: Signer  # this party's own event signatures


def load_service_trust(settings: Settings, party: str) -> ServiceTrust:
    """Fails fast, naming the variable, when the trust document or the signing key is missing or does not
    belong to ``party`` (a key enrolled for another party would make every event this service sends be
    rejected by its consumers)."""
    if not settings.trust_file:
        raise ConfigError("environment variable METROFED_TRUST_FILE is required (the federation's trust "
                          "document; `metrofed trust init` makes one)")
    if not settings.signing_key:
        raise ConfigError(f"environment variable METROFED_SIGNING_KEY is required (the private signing key "
                          f"of {party}; `metrofed enrol` makes one)")
    try:
        store = TrustStore(settings.trust_file)
        signer = Signer.from_file(party, settings.signing_key)
    except (OSError, RuntimeError, ValueError) as exc:
        raise ConfigError(f"METROFED_TRUST_FILE / METROFED_SIGNING_KEY: {exc}") from None
    key = store.key(signer.kid)
    if key is None or key.party != party:
        raise ConfigError(f"METROFED_SIGNING_KEY: key {signer.kid} is not enrolled for {party} in "
                          f"{settings.trust_file} (`metrofed enrol …`)")
    return ServiceTrust(party, store, TokenVerifier(store), Verifier(store), signer)
