"""The federation's trust model, as adapters around ``metrofed.domain.access``.

- ``store``: the trust anchor every process reads (the credential issuer's public key, each party's
  event-signing keys with their status, revocations), written only by the operator's CLI.
- ``credentials``: caller credentials — EdDSA-signed JWTs naming a role and a subject.
- ``signing``: every event on the bus is signed by its producer's key (Ed25519 over a Merkle root of the
  relay's batch) and verified by its consumers against the trust store.
- ``grpc_auth``: the server interceptor that authenticates every call and enforces ``policy``.
- ``home``: the operator's side — the federation's home directory, enrolment, rotation, revocation.

docs/security.md has the threat model and the key lifecycle.
"""
