"""How a consumer tells a record it must retry from a record it must give up on.

Transient: anything a later attempt can change (broker or database unavailable, a lock timeout). The
consumer retries the same record, in order, with backoff. Permanent: the record itself can never be
handled (undecodable, invalid, a broken signature, a domain rule it can never satisfy). Handlers raise
``PermanentFailure``; the consumer dead-letters the record with the reason and moves on.
"""

from __future__ import annotations


class PermanentFailure(Exception):
    """This record can never be handled: dead-letter it with ``code`` and ``reason`` and move on.

    ``code`` is a short machine-readable word (``undecodable``, ``invalid``, ``signature``,
    ``unauthorised``, ``domain-rule``, ...); ``reason`` is the sentence an operator reads.
    """

    def __init__(self, code: str, reason: str):
        super().__init__(f"{code}: {reason}")
        self.code = code
        self.reason = reason
