"""Which database commands a process sends: runs the worker (or the API) with a PyMongo
command listener that tallies every command by name and collection (count, round-trip time)
and writes the tallies to a JSON file twice a second.

    python -m bench.commands --out PATH worker
    python -m bench.commands --out PATH api --port 8110

`tally_difference(before, after)` and `print_tallies` read two such files back (what ran in
between): `bench.job_commands` uses them for one small job and for the P5 mix.
"""

from __future__ import annotations

import argparse
import json
import sys
import threading
import time
from collections.abc import Mapping
from pathlib import Path

from pymongo import monitoring

Tally = dict[str, dict[str, float]]


class CommandTally(monitoring.CommandListener):
    """Counts commands by `<command> <collection>` with their summed round trips (µs)."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.tally: Tally = {}
        self.pending: dict[int, str] = {}

    def started(self, event: monitoring.CommandStartedEvent) -> None:
        name = event.command_name
        if name in {"hello", "ismaster", "isMaster", "endSessions"}:
            return  # the driver's monitoring, not the process's work
        target = event.command.get(name)
        what = f"{name} {target}" if isinstance(target, str) else name
        if name == "getMore":
            what = f"getMore {event.command.get('collection')}"
        with self.lock:
            self.pending[event.request_id] = what

    def _done(self, request_id: int, micros: int) -> None:
        with self.lock:
            what = self.pending.pop(request_id, None)
            if what is None:
                return
            entry = self.tally.setdefault(what, {"count": 0, "micros": 0})
            entry["count"] += 1
            entry["micros"] += micros

    def succeeded(self, event: monitoring.CommandSucceededEvent) -> None:
        self._done(event.request_id, event.duration_micros)

    def failed(self, event: monitoring.CommandFailedEvent) -> None:
        self._done(event.request_id, event.duration_micros)

    def snapshot(self) -> Tally:
        with self.lock:
            return {k: dict(v) for k, v in self.tally.items()}


def _writer(tally: CommandTally, out: Path) -> None:
    while True:
        tmp = out.with_suffix(".tmp")
        tmp.write_text(json.dumps(tally.snapshot()))
        tmp.replace(out)
        time.sleep(0.5)


def read_tally(path: Path) -> Tally:
    try:
        return dict(json.loads(path.read_text()))
    except (OSError, ValueError):
        return {}


def tally_difference(before: Mapping[str, Mapping[str, float]], after: Tally) -> Tally:
    out: Tally = {}
    for what, entry in after.items():
        old = before.get(what, {})
        count = entry["count"] - old.get("count", 0)
        if count:
            out[what] = {"count": count, "micros": entry["micros"] - old.get("micros", 0)}
    return out


def print_tallies(title: str, tally: Tally, per: float = 1.0) -> None:
    total = sum(e["count"] for e in tally.values())
    micros = sum(e["micros"] for e in tally.values())
    print(f"-- {title}: {total / per:.1f} commands, {micros / per / 1000:.1f} ms round trips")
    for what, e in sorted(tally.items(), key=lambda kv: -kv[1]["micros"]):
        print(f"   {e['count'] / per:8.2f} x {what:<44} {e['micros'] / per / 1000:9.2f} ms")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.commands")
    parser.add_argument("--out", required=True)
    parser.add_argument("entry", choices=["worker", "api"])
    args, rest = parser.parse_known_args(argv)
    tally = CommandTally()
    monitoring.register(tally)  # before any client exists
    threading.Thread(target=_writer, args=(tally, Path(args.out)), daemon=True).start()
    if args.entry == "worker":
        from worker.main import main as entry
    else:
        from app.__main__ import main as entry
    return entry(rest)


if __name__ == "__main__":
    sys.exit(main())
