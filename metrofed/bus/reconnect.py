"""How fast every Kafka client of ours finds the broker again after it restarts (docs/failover.md).

kafka-python 3.0.12 backs off reconnects exponentially up to ``reconnect_backoff_max_ms`` = 30 s: a
broker down for a few seconds leaves clients waiting out a backoff long after it is back -- the 20-40 s
rejoins measured before. On a federation's few connections, retrying a refused connect every second at
most costs nothing. ``bench/recovery.py`` measures the effect.
"""

from __future__ import annotations

RECONNECT_SETTINGS: dict = {
    "reconnect_backoff_ms": 50,
    "reconnect_backoff_max_ms": 1000,
    # coordinator rediscovery, metadata refresh and retriable errors wait this long between tries
    "retry_backoff_ms": 100,
}
