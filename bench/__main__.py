"""Run every benchmark (what ``make bench`` calls): ``.venv/bin/python -m bench [--quick]``.

Prints figures next to their goals; asserts nothing. ``--quick`` is the CI smoke (small sizes).
``--skip-kafka`` leaves out the broker-backed benchmarks (catalog rebuild, end-to-end latency).
"""

from __future__ import annotations

import argparse
import sys
import time


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m bench", description="metrofed benchmarks")
    ap.add_argument("--quick", action="store_true", help="small sizes (CI smoke)")
    ap.add_argument("--sizes", default=None, help="routing sizes, e.g. 10000,100000 (default 10k,100k,1M)")
    ap.add_argument("--events", type=int, default=None, help="rebuild events (default 100k; 10k with --quick)")
    ap.add_argument("--skip-kafka", action="store_true", help="skip bench.catalog_rebuild (needs Java + Maven)")
    a = ap.parse_args(argv)

    from bench import catalog_rebuild, e2e_latency, routing

    t0 = time.perf_counter()
    steps = []
    r_args = ["--quick"] if a.quick else []
    if a.sizes:
        r_args = ["--sizes", a.sizes] + (["--needs", "60"] if a.quick else [])
    steps.append(("routing", lambda: routing.main(r_args)))
    if not a.skip_kafka:
        k_args = ["--quick"] if a.quick else []
        if a.events:
            k_args = ["--events", str(a.events)]
        steps.append(("catalog_rebuild", lambda: catalog_rebuild.main(k_args)))
        steps.append(("e2e_latency", lambda: e2e_latency.main(["--requests", "50" if a.quick else "200"])))
    failed = []
    for i, (name, fn) in enumerate(steps, 1):
        print(f"\n[{i}/{len(steps)}] bench.{name} ({time.perf_counter() - t0:.0f} s elapsed)", flush=True)
        try:
            fn()
        except Exception as exc:  # noqa: BLE001 -- report and go on to the next benchmark
            failed.append(name)
            print(f"bench.{name} failed: {exc!r}", file=sys.stderr)
    print(f"\nbenchmarks done in {time.perf_counter() - t0:.0f} s"
          + (f"; FAILED: {', '.join(failed)}" if failed else ""))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
