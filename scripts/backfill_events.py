"""Fills stored learning events' denormalized ids, fixes legacy type spellings and text numbers.

Payload numbers stored as text (`score: "85"`, `durationSeconds: "300"`) are held to the event
contract: coerced when it accepts them, counted as unresolvable with the reason when it does not.

    python -m scripts.backfill_events [--batch-size N] [--dry-run] [--limit N] [--restart]

Idempotent and resumable: a killed run continues where it stopped when started again (see
app/learning_events/backfill.py). Safe while the service is live: only conditional
per-document updates, in bulk batches; `--pause-ms` slows it down further.
"""

from __future__ import annotations

import argparse
import asyncio
import sys

from tqdm import tqdm

from app.config import get_settings
from app.db import Database
from app.documents import DOCUMENTS
from app.learning_events.backfill import BackfillConflict, run_backfill


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m scripts.backfill_events", description=__doc__.splitlines()[0]
    )
    parser.add_argument(
        "--batch-size", type=int, default=1000, help="events per batch (default 1000)"
    )
    parser.add_argument(
        "--dry-run", action="store_true", help="report what would change; write nothing"
    )
    parser.add_argument(
        "--limit", type=int, default=None, help="stop after scanning N events in this run"
    )
    parser.add_argument(
        "--restart", action="store_true", help="forget the checkpoint and scan everything again"
    )
    parser.add_argument(
        "--pause-ms", type=int, default=0, help="pause between batches (eases a live database)"
    )
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")
    parser.add_argument(
        "--simulate-crash-after", type=int, default=None, metavar="BATCHES", help=argparse.SUPPRESS
    )
    args = parser.parse_args(argv)
    if args.batch_size < 1 or (args.limit is not None and args.limit < 0):
        parser.error("--batch-size must be >= 1 and --limit >= 0")
    return args


async def main_async(args: argparse.Namespace) -> int:
    database = Database(get_settings())
    await database.connect(DOCUMENTS)
    bar = tqdm(unit="events", disable=args.no_progress, dynamic_ncols=True, file=sys.stderr)

    def advance(n: int) -> None:
        bar.update(n)

    def set_total(total: int) -> None:
        bar.total = bar.n + total
        bar.refresh()

    try:
        result = await run_backfill(
            batch_size=args.batch_size,
            dry_run=args.dry_run,
            limit=args.limit,
            restart=args.restart,
            pause_seconds=args.pause_ms / 1000,
            crash_after_batches=args.simulate_crash_after,
            progress=advance,
            on_total=None if args.no_progress else set_total,  # a count of all events
        )
    except BackfillConflict as exc:
        bar.close()
        print(f"backfill: {exc}", file=sys.stderr)
        return 3
    finally:
        bar.close()
        await database.close()

    label = "DRY RUN (nothing written): " if result.dry_run else ""
    state = "complete" if result.finished else "stopped early; run again to continue"
    print(f"{label}backfill of learning events {state}")
    print("this run:")
    for line in result.run.lines():
        print(f"  {line}")
    if not result.dry_run:
        print("all runs so far:")
        for line in result.total.lines():
            print(f"  {line}")
    return 0


def main(argv: list[str] | None = None) -> int:
    return asyncio.run(main_async(parse_args(argv)))


if __name__ == "__main__":
    sys.exit(main())
