"""``python -m infra.devstack up|down|status``: the devstack as detached background services.

State lives in ``<repo>/var/devstack/state.json``; each service's files (config, data, log) in
``<repo>/var/devstack/<service>/``. ``up`` is idempotent: services recorded as running are kept,
missing ones are started. ``down`` stops everything recorded (SIGTERM to the process group, SIGKILL
after a grace period; PostgreSQL through ``pg_ctl stop -m fast``) and removes the state file.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import shutil
import sys
import time
from pathlib import Path

from ._proc import VAR_DIR, REPO_ROOT, group_alive, log, pid_alive, rss_kib, stop_group
from metrofed.bus.admin import ensure_topics
from metrofed.bus.topics import federation_topics

from .kafka import KafkaBroker
from .postgres import PostgresServer, postgres_user_can_reach
from .zipkin import ZipkinServer

STACK_DIR = VAR_DIR / "devstack"
STATE_FILE = STACK_DIR / "state.json"
DEFAULT_POSTGRES_PORT = 55432


def load_state() -> dict:
    try:
        return json.loads(STATE_FILE.read_text())
    except (OSError, ValueError):
        return {}


def save_state(state: dict) -> None:
    STACK_DIR.mkdir(parents=True, exist_ok=True)
    tmp = STATE_FILE.with_suffix(".tmp")
    tmp.write_text(json.dumps(state, indent=2, sort_keys=True) + "\n")
    os.replace(tmp, STATE_FILE)


def service_alive(entry: dict | None) -> bool:
    return bool(entry) and pid_alive(entry.get("pid"))


def postgres_dir() -> Path:
    d = STACK_DIR / "postgres"
    if postgres_user_can_reach(d.parent if d.parent.exists() else STACK_DIR):
        return d
    # The checkout sits below a directory the postgres OS user cannot enter (e.g. /root):
    # keep the cluster under /tmp, one per checkout.
    tag = hashlib.sha1(str(REPO_ROOT).encode()).hexdigest()[:8]
    return Path(f"/tmp/metrofed-devstack-{tag}/postgres")


def cmd_up(args: argparse.Namespace) -> int:
    state = load_state()
    started: list[tuple[str, object]] = []
    try:
        if args.fresh:
            if any(service_alive(state.get(s)) for s in ("kafka", "zipkin", "postgres")):
                log("--fresh: stopping the running services first")
                cmd_down(args)
                state = {}
            for sub in ("kafka", "zipkin"):
                shutil.rmtree(STACK_DIR / sub, ignore_errors=True)
            shutil.rmtree(postgres_dir(), ignore_errors=True)

        if service_alive(state.get("kafka")):
            log(f"kafka already up at {state['kafka']['bootstrap']}")
        else:
            log("starting kafka ...")
            # The PKI lives in var/pki/, outside the broker's directory: `up --fresh` keeps the CA clients trust.
            broker = KafkaBroker(STACK_DIR / "kafka", port=args.kafka_port,
                                 controller_port=args.kafka_controller_port,
                                 die_with_parent=False, pki_home=VAR_DIR)
            broker.start(timeout=args.timeout)
            started.append(("kafka", broker))
            ensure_topics(broker.bootstrap, federation_topics(), security=broker.admin_security)
            admin = broker.ca.issue("admin")
            state["kafka"] = {"pid": broker.pid, "pgid": os.getpgid(broker.pid),
                              "bootstrap": broker.bootstrap, "port": broker.port,
                              "controller_port": broker.controller_port,
                              "data_dir": str(broker.data_dir), "log": str(broker.log_path),
                              # the operator's identity, for `metrofed` CLI commands against this broker
                              "admin_tls": admin.env()}
            save_state(state)
            log(f"kafka ready at {broker.bootstrap} in {broker.startup_seconds:.1f}s")

        if not args.no_zipkin:
            if service_alive(state.get("zipkin")):
                log(f"zipkin already up at {state['zipkin']['url']}")
            else:
                log("starting zipkin ...")
                z = ZipkinServer(port=args.zipkin_port, data_dir=STACK_DIR / "zipkin",
                                 die_with_parent=False)
                z.start(timeout=args.timeout)
                started.append(("zipkin", z))
                state["zipkin"] = {"pid": z.pid, "pgid": os.getpgid(z.pid), "url": z.url,
                                   "ui": f"{z.url}/zipkin/", "spans_endpoint": z.spans_endpoint,
                                   "port": z.port, "log": str(z.log_path)}
                save_state(state)
                log(f"zipkin ready at {z.url} in {z.startup_seconds:.1f}s")

        if args.postgres:
            if service_alive(state.get("postgres")):
                log(f"postgres already up at {state['postgres']['url']}")
            else:
                log("starting postgres ...")
                pg = PostgresServer(postgres_dir(), port=args.postgres_port)
                pg.start(timeout=args.timeout)
                started.append(("postgres", pg))
                state["postgres"] = {"pid": pg.pid, "pgid": os.getpgid(pg.pid), "url": pg.url,
                                     "dsn": pg.dsn, "port": pg.port, "data_dir": str(pg.data_dir),
                                     "bin_dir": str(pg.bin_dir), "log": str(pg.log_path)}
                save_state(state)
                log(f"postgres ready at {pg.url} in {pg.startup_seconds:.1f}s")
    except BaseException as exc:
        log(f"up failed: {exc}")
        for name, svc in reversed(started):
            log(f"stopping {name} started by this attempt")
            svc.stop()
            state.pop(name, None)
        if state:
            save_state(state)
        else:
            STATE_FILE.unlink(missing_ok=True)
        return 1
    state["updated"] = time.strftime("%Y-%m-%dT%H:%M:%S")
    save_state(state)
    print_state(state, as_json=args.json)
    return 0


def stop_entry(name: str, entry: dict, timeout: float) -> None:
    if name == "postgres" and entry.get("data_dir") and entry.get("bin_dir"):
        pg = PostgresServer(entry["data_dir"], port=entry.get("port"))
        pg.bin_dir = Path(entry["bin_dir"])
        pg.pid = entry.get("pid")
        pg.stop(timeout=timeout, cleanup=False)
        return
    pgid = entry.get("pgid") or entry.get("pid")
    if group_alive(pgid):
        stop_group(pgid, timeout)


def cmd_down(args: argparse.Namespace) -> int:
    state = load_state()
    if not state:
        log("nothing recorded in " + str(STATE_FILE))
        return 0
    for name in ("postgres", "zipkin", "kafka"):
        entry = state.get(name)
        if not entry:
            continue
        if service_alive(entry) or group_alive(entry.get("pgid")):
            t0 = time.monotonic()
            stop_entry(name, entry, args.timeout)
            log(f"stopped {name} (pid {entry.get('pid')}) in {time.monotonic() - t0:.1f}s")
        else:
            log(f"{name} (pid {entry.get('pid')}) was not running")
    STATE_FILE.unlink(missing_ok=True)
    return 0


def print_state(state: dict, as_json: bool = False) -> None:
    view = {}
    for name in ("kafka", "zipkin", "postgres"):
        entry = state.get(name)
        if entry:
            alive = service_alive(entry)
            rss = rss_kib(entry["pid"]) if alive else None
            view[name] = dict(entry, alive=alive, rss_mib=round(rss / 1024, 1) if rss else None)
    if as_json:
        print(json.dumps(view, indent=2, sort_keys=True))
        return
    if not view:
        print("devstack: nothing running (no state in var/devstack/state.json)")
        return
    for name, e in view.items():
        where = e.get("bootstrap") or e.get("url")
        status = "up" if e["alive"] else "DOWN"
        extra = f"  rss {e['rss_mib']} MiB" if e.get("rss_mib") else ""
        print(f"{name:9s} {status:5s} {where}  pid {e['pid']}{extra}")
        if name == "zipkin":
            print(f"{'':15s} UI {e['ui']}   spans {e['spans_endpoint']}")
        print(f"{'':15s} log {e['log']}")


def cmd_status(args: argparse.Namespace) -> int:
    state = load_state()
    print_state(state, as_json=args.json)
    services = [state[n] for n in ("kafka", "zipkin", "postgres") if n in state]
    return 0 if services and all(service_alive(s) for s in services) else 3


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m infra.devstack", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = p.add_subparsers(dest="command", required=True)
    up = sub.add_parser("up", help="start kafka (+zipkin, +postgres) detached")
    up.add_argument("--kafka-port", type=int, default=9092)
    up.add_argument("--kafka-controller-port", type=int, default=None,
                    help="default: the one the data dir was formatted with, else a free port")
    up.add_argument("--zipkin-port", type=int, default=9411)
    up.add_argument("--no-zipkin", action="store_true")
    up.add_argument("--postgres", action="store_true", help="also start PostgreSQL")
    up.add_argument("--postgres-port", type=int, default=DEFAULT_POSTGRES_PORT)
    up.add_argument("--fresh", action="store_true", help="wipe kafka/postgres data first")
    up.add_argument("--timeout", type=float, default=120)
    up.add_argument("--json", action="store_true", help="print the state as JSON")
    down = sub.add_parser("down", help="stop everything recorded in var/devstack/state.json")
    down.add_argument("--timeout", type=float, default=20)
    st = sub.add_parser("status", help="show what runs (exit 0 all up, 3 otherwise)")
    st.add_argument("--json", action="store_true")
    args = p.parse_args(argv)
    return {"up": cmd_up, "down": cmd_down, "status": cmd_status}[args.command](args)


if __name__ == "__main__":
    sys.exit(main())
