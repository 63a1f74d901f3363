"""Check the gateway's array path against the reference router on the synthetic federation.

    .venv/bin/python -m bench.route_equivalence                # 20k capabilities, 300 needs
    .venv/bin/python -m bench.route_equivalence --size 100000 --needs 1000

For every need: ``catalog.route_need`` (what the gateway runs) must return exactly
``routing.route(need, selected)`` over the capabilities it selected (reported back through
``stats["handed"]``), with random centre loads (some full). Prints the mismatches (the first few in detail)
and the latency of both; exits 1 on a mismatch. A tool for whoever changes ``indexed_routing.py`` or
``route_table.py``; the property tests in tests/unit/test_indexed_routing.py check the same on small
random catalogs.
"""

from __future__ import annotations

import argparse
import datetime as dt
import random
import sys
import time

from bench.routing import _need_objects, pct
from bench.synthetic import make_capabilities, make_centres
from metrofed.domain import routing
from metrofed.domain.catalog import Catalog, CatalogBuilder, Stamp, route_need


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m bench.route_equivalence", description=__doc__.split("\n")[0])
    ap.add_argument("--size", type=int, default=20000)
    ap.add_argument("--needs", type=int, default=300)
    a = ap.parse_args(argv)
    today = dt.date(2026, 11, 27)
    centres = make_centres(60)
    print(f"building {a.size:,} capabilities ...", flush=True)
    b = CatalogBuilder()
    for p in centres:
        b.upsert_centre(p, Stamp(0))
    for i, c in enumerate(make_capabilities(a.size, centres)):
        b.upsert_capability(c, Stamp(i))
    cat = Catalog()
    cat.install(b)
    snap = cat.current()
    needs, _named, _bad = _need_objects(a.needs, today)
    rnd = random.Random(3)
    load = {p.centre_id: rnd.choice([0.0, 0.2, 0.5, 0.9, 1.0, 1.2]) for p in centres}
    bad, fast, ref_ms = 0, [], []
    for i, need in enumerate(needs):
        stats: dict = {"handed": []}
        t = time.perf_counter()
        d = route_need(snap, need, load, today, stats=stats)
        fast.append((time.perf_counter() - t) * 1e3)
        t = time.perf_counter()
        ref = routing.route(need, stats["handed"], snap.centres, load, today, max_candidates=20)
        ref_ms.append((time.perf_counter() - t) * 1e3)
        if d != ref:
            bad += 1
            if bad <= 5:
                print(f"MISMATCH need #{i}: {need.describe()}")
                for f in ("candidates", "candidates_total", "rejected", "rejected_total", "rejected_by_reason",
                          "rejected_centres", "split"):
                    if getattr(d, f) != getattr(ref, f):
                        print(f"  {f}:\n    route_need: {getattr(d, f)!r:.600}\n    route:      {getattr(ref, f)!r:.600}")
    print(f"{len(needs)} needs, {bad} mismatches; route_need p50 {pct(fast, 50):.2f} ms p99 {pct(fast, 99):.2f} ms; "
          f"route over the same selection p50 {pct(ref_ms, 50):.2f} ms p99 {pct(ref_ms, 99):.2f} ms")
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
