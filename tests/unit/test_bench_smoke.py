"""The benchmarks keep running as the code changes: tiny sizes, no figures judged (those are for people)."""

from __future__ import annotations

from bench import routing
from bench.synthetic import make_capabilities, make_centres
from metrofed.bus.codec import decode_capability, encode_capability


def test_routing_benchmark_runs_on_a_tiny_catalog(capsys):
    routing.main(["--sizes", "2000", "--needs", "20"])
    out = capsys.readouterr().out
    assert "p99" in out and "2,000 capabilities" in out


def test_synthetic_capabilities_survive_the_bus_codec():
    # bench.catalog_rebuild sends these through the real broker; every one must be valid on the wire.
    caps = make_capabilities(500, make_centres(60))
    assert all(decode_capability(encode_capability(c)) == c for c in caps)  # valid, and exact to the bit
