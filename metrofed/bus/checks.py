"""Invariants of ids carried in events, checked before a handler touches its database.

An id that breaks them can never be handled: PostgreSQL refuses a value longer than its column or a NUL
byte (a DataError), SQLite stores it and a later lookup misses. Failing early as ``invalid`` gives the same
dead letter on every database and keeps a poison record from reaching -- let alone changing -- any row.
"""

from __future__ import annotations

from metrofed.bus.failures import PermanentFailure


def check_id(value: str, field: str, limit: int) -> str:
    if not value:
        raise PermanentFailure("invalid", f"{field}: is required")
    if len(value) > limit:
        raise PermanentFailure("invalid", f"{field}: is {len(value)} characters long; at most {limit} are allowed")
    if "\x00" in value:
        raise PermanentFailure("invalid", f"{field}: contains a NUL character")
    return value
