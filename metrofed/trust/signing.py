"""Signed events: every record a party puts on the bus carries its producer's signature, and consumers
verify it against the trust store before anything is applied.

What is signed (``leaf``): the topic, the record key, and the envelope fields that matter — event id,
event type, producer, time, schema version — and the payload bytes; for a tombstone (no value, see
``metrofed.v1.Envelope``), the same fields from its headers. So a signature cannot be moved to another
key, topic or producer, and a payload cannot be changed under it.

Batches: an Ed25519 verification costs ~0.1–0.2 ms on our 2-core machines, which would cap a catalog
rebuild near 5–10k events/s (the goal is ≥ 20k). The outbox relay therefore signs the *Merkle root* of
the batch it sends, once, and each record carries the root's signature, its leaf index, the batch size
and the sibling hashes up to the root (``log2(batch)`` × 32 bytes). A verifier hashes its way to the root
(microseconds) and checks the root's signature once per batch: the records of a batch verify each other's
root from a cache. Each record still verifies on its own — compaction may delete its batch-mates.
"""

from __future__ import annotations

import hashlib
import struct
import threading
from dataclasses import dataclass
from pathlib import Path

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import load_pem_private_key

from metrofed.bus.failures import PermanentFailure
from metrofed.trust.store import REVOKED, TrustStore, key_id

_LEAF, _NODE = b"\x00", b"\x01"
_ROOT_DOMAIN = b"metrofed.v1 event batch\x00"
MAX_PATH = 32  # a batch of up to 2**32 records


_LEN = struct.Struct(">I").pack
_TIME = struct.Struct(">qi").pack


def leaf(topic: str, key: bytes | None, event_id: str, event_type: str, producer: str, occurred_ns: int,
         schema_version: int, payload: bytes | None, withdrawn_version: int | None = None) -> bytes:
    """The hash a seal covers: each field length-prefixed, so no two field lists hash alike. A tombstone
    (``payload`` None) covers the version it withdraws, so an old withdrawal replayed after a
    re-publication cannot remove the newer version. (One join and one hash call: this runs for every
    record of a catalog rebuild.)"""
    body = (b"t" + str(withdrawn_version if withdrawn_version is not None else -1).encode() if payload is None
            else b"p" + payload)
    k = b"\xff" if key is None else b"k" + key
    t, e, ty, pr = topic.encode(), event_id.encode(), event_type.encode(), producer.encode()
    return hashlib.sha256(b"".join((
        _LEAF, _LEN(len(t)), t, _LEN(len(k)), k, _LEN(len(e)), e, _LEN(len(ty)), ty, _LEN(len(pr)), pr,
        _TIME(occurred_ns, schema_version), _LEN(len(body)), body))).digest()


def _node(left: bytes, right: bytes) -> bytes:
    return hashlib.sha256(_NODE + left + right).digest()


def _root_message(kid: str, size: int, root: bytes) -> bytes:
    return _ROOT_DOMAIN + kid.encode() + struct.pack(">I", size) + root


@dataclass(frozen=True)
class Seal:
    kid: str
    signature: bytes  # over the batch's root
    index: int
    size: int
    path: tuple[bytes, ...]  # sibling hashes, leaf level first (levels where the node had none are skipped)


def merkle_seals(leaves: list[bytes]) -> tuple[bytes, list[list[bytes]]]:
    """The root of ``leaves`` and, for each leaf, its sibling path. An odd node at the end of a level is
    carried up unchanged (it has no sibling at that level)."""
    paths: list[list[bytes]] = [[] for _ in leaves]
    level = list(leaves)
    members = [[i] for i in range(len(leaves))]  # which leaves sit under each node of the level
    while len(level) > 1:
        nxt, nxt_members = [], []
        for j in range(0, len(level) - 1, 2):
            for i in members[j]:
                paths[i].append(level[j + 1])
            for i in members[j + 1]:
                paths[i].append(level[j])
            nxt.append(_node(level[j], level[j + 1]))
            nxt_members.append(members[j] + members[j + 1])
        if len(level) % 2:
            nxt.append(level[-1])
            nxt_members.append(members[-1])
        level, members = nxt, nxt_members
    return level[0], paths


def root_from_path(leaf_hash: bytes, index: int, size: int, path: tuple[bytes, ...]) -> bytes:
    if not 0 <= index < size or len(path) > MAX_PATH:
        raise PermanentFailure("signature", f"seal names leaf {index} of a batch of {size}")
    node, i, n, used = leaf_hash, index, size, 0
    while n > 1:
        if i == n - 1 and n % 2:  # carried up without a sibling
            pass
        else:
            if used >= len(path):
                raise PermanentFailure("signature", "seal path too short")
            sibling = path[used]
            used += 1
            node = _node(node, sibling) if i % 2 == 0 else _node(sibling, node)
        i, n = i // 2, (n + 1) // 2
    if used != len(path):
        raise PermanentFailure("signature", "seal path too long")
    return node


class Signer:
    """A party's private signing key. ``seal`` signs one batch of leaves with one signature."""

    def __init__(self, party: str, private_key: Ed25519PrivateKey):
        self.party = party
        self._key = private_key
        self.kid = key_id(private_key.public_key())

    @classmethod
    def from_file(cls, party: str, path: Path | str) -> "Signer":
        key = load_pem_private_key(Path(path).read_bytes(), password=None)
        if not isinstance(key, Ed25519PrivateKey):
            raise RuntimeError(f"{path}: not an Ed25519 private key")
        return cls(party, key)

    def seal(self, leaves: list[bytes]) -> list[Seal]:
        if not leaves:
            return []
        root, paths = merkle_seals(leaves)
        signature = self._key.sign(_root_message(self.kid, len(leaves), root))
        return [Seal(self.kid, signature, i, len(leaves), tuple(p)) for i, p in enumerate(paths)]


class Verifier:
    """Checks seals against the trust store; remembers verified roots (bounded) so a batch costs one
    Ed25519 verification however many of its records are read."""

    def __init__(self, store: TrustStore, *, cache_size: int = 200_000):
        self.store = store
        self._roots: dict[tuple[str, bytes, int, bytes], int] = {}
        self._cache_size = cache_size
        self._lock = threading.Lock()

    def verify(self, leaf_hash: bytes, seal: Seal, *, party: str) -> None:
        """Raises ``PermanentFailure('signature', …)`` unless ``seal`` is ``party``'s valid signature."""
        if not seal.kid or not seal.signature:
            raise PermanentFailure("signature", "unsigned event")
        key = self.store.key(seal.kid)
        if key is None:
            raise PermanentFailure("signature", f"signed by unknown key {seal.kid[:16]!r}")
        if key.party != party:
            raise PermanentFailure("signature", f"signed by {key.party}'s key, but the event speaks for {party[:60]}")
        if key.status == REVOKED:
            raise PermanentFailure("signature", f"signed by revoked key {seal.kid} of {key.party}")
        root = root_from_path(leaf_hash, seal.index, seal.size, seal.path)
        cache_key = (seal.kid, root, seal.size, seal.signature)
        if self._roots.get(cache_key) == self.store.generation:
            return
        try:
            key.public.verify(seal.signature, _root_message(seal.kid, seal.size, root))
        except InvalidSignature:
            raise PermanentFailure("signature", f"bad signature (key {seal.kid} of {key.party})") from None
        with self._lock:
            if len(self._roots) >= self._cache_size:
                self._roots.clear()
            self._roots[cache_key] = self.store.generation
