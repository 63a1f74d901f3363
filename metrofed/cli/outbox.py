"""``metrofed outbox``: the rows a service's outbox relay gave up on, and re-driving them.

    metrofed outbox dead  --database-url URL [--limit N]
    metrofed outbox retry --database-url URL (--id N ... | --all)

Works on any metrofed service database (a centre's or the gateway's: the outbox table is the same).
"""

from __future__ import annotations

import argparse
import sys

from sqlalchemy.orm import DeclarativeBase, sessionmaker

from metrofed.db.engine import make_engine
from metrofed.db.outbox import OutboxMixin, dead_rows, outbox_counts, retry_dead


class _Base(DeclarativeBase):
    pass


class _Outbox(OutboxMixin, _Base):
    __tablename__ = "outbox"


def register(sub) -> None:
    group = sub.add_parser("outbox", help="outbox rows the relay could not send")
    cmds = group.add_subparsers(dest="command", required=True, metavar="COMMAND")

    dead = cmds.add_parser("dead", help="list dead rows (refused by the broker for good)")
    dead.add_argument("--database-url", required=True, help="the service's database (SQLAlchemy URL)")
    dead.add_argument("--limit", type=int, default=200)
    dead.set_defaults(func=_dead)

    retry = cmds.add_parser("retry", help="make dead rows pending again")
    retry.add_argument("--database-url", required=True, help="the service's database (SQLAlchemy URL)")
    which = retry.add_mutually_exclusive_group(required=True)
    which.add_argument("--id", type=int, action="append", dest="ids", metavar="N", help="a row id (repeatable)")
    which.add_argument("--all", action="store_true", help="every dead row")
    retry.set_defaults(func=_retry)


def _sessions(url: str) -> sessionmaker:
    return sessionmaker(make_engine(url, instrument=False), expire_on_commit=False)


def _table(rows: list[list[str]]) -> str:
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    return "\n".join("  ".join(cell.ljust(w) for cell, w in zip(r, widths)).rstrip() for r in rows)


def _dead(args: argparse.Namespace) -> int:
    with _sessions(args.database_url)() as s:
        rows = dead_rows(s, _Outbox, args.limit)
        counts = outbox_counts(s, _Outbox)
    table = [["ID", "FAILED AT", "TOPIC", "KEY", "EVENT TYPE", "BYTES", "ATTEMPTS", "ERROR"]]
    for r in rows:
        table.append([str(r.id), r.failed_at.strftime("%Y-%m-%d %H:%M:%S") if r.failed_at else "",
                      r.topic, r.key or "", r.event_type, str(len(r.value or b"")), str(r.attempts),
                      (r.error or "").replace("\n", " ")[:120]])
    print(_table(table))
    print(f"\n{counts['dead']} dead, {counts['pending']} pending, {counts['sent']} sent (kept 24 h)")
    return 0


def _retry(args: argparse.Namespace) -> int:
    with _sessions(args.database_url)() as s:
        n = retry_dead(s, _Outbox, None if args.all else args.ids)
        s.commit()
    print(f"{n} row(s) pending again; the service's relay sends them within its next rounds")
    if not args.all and n < len(set(args.ids)):
        print("some ids were not dead rows (unknown, pending or already sent) and were left alone",
              file=sys.stderr)
        return 1
    return 0
